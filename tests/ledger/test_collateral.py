from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import Entry, Journal, LedgerAccountKind
from margin.services.collateral import (
    collateral_deposit,
    collateral_max_withdrawal,
    collateral_withdraw,
)
from margin.services.positions import position_market_fill
from tests.ledger.support import balance, fund, house, new_key, set_mark


def test_a_deposit_credits_the_wallet_against_the_outside_world(account):
    # when
    receipt = collateral_deposit(
        account=account, asset="BTC", amount=Decimal("1.25"), idempotency_key=new_key()
    )
    # then
    assert balance(account, asset="BTC") == Decimal("1.25")
    assert house(LedgerAccountKind.EXTERNAL, "BTC") == Decimal("-1.25")
    assert sorted(
        Entry.objects.filter(journal_id=receipt.journal_id).values_list("amount", flat=True)
    ) == [
        Decimal("-1.25"),
        Decimal("1.25"),
    ]
    assert receipt.details["balance"] == "1.25"


@pytest.mark.parametrize(
    ("asset", "amount", "message"),
    [
        ("USDT", "0", "must be positive"),
        ("USDT", "-5", "must be positive"),
        ("USDT", "abc", "must be a number"),
        ("USDT", "NaN", "must be positive"),
        ("USDT", "0.0000000000000000001", "18 decimal places"),
        ("DOGE", "5", "Unknown asset 'DOGE'"),
    ],
)
def test_bad_deposits_are_refused_with_a_clear_message_and_nothing_written(
    account, asset, amount, message
):
    with pytest.raises(ApplicationError, match=message):
        collateral_deposit(account=account, asset=asset, amount=amount, idempotency_key=new_key())
    assert not Journal.objects.exists()


def test_a_withdrawal_cannot_exceed_the_wallet(account):
    # given
    fund(account, "ETH", "2")
    # when / then
    with pytest.raises(ApplicationError, match="holds 2 ETH"):
        collateral_withdraw(account=account, asset="ETH", amount="2.5", idempotency_key=new_key())
    receipt = collateral_withdraw(
        account=account, asset="ETH", amount="2", idempotency_key=new_key()
    )
    assert balance(account, asset="ETH") == 0
    assert house(LedgerAccountKind.EXTERNAL, "ETH") == 0
    assert receipt.details["balance"] == "0"


def test_unrealized_profit_cannot_be_withdrawn(account):
    # given 20,000 USDT and a long of 1 BTC at 10x (initial margin 9,501 at 95,010)
    fund(account, "USDT", "20000")
    position_market_fill(
        account=account, instrument="BTCUSDT", side="buy", quantity="1", idempotency_key=new_key()
    )
    wallet = balance(account)
    # when the mark rises by 5,000: a profit, and a higher initial margin
    set_mark("BTCUSDT", "100010")
    most = collateral_max_withdrawal(account=account, asset="USDT")
    # then only the wallet above the initial margin may leave; the profit stays
    assert most == wallet - Decimal("10001")
    with pytest.raises(ApplicationError, match=f"at most {most.normalize():f} USDT"):
        collateral_withdraw(
            account=account, asset="USDT", amount=most + Decimal("0.01"), idempotency_key=new_key()
        )
    collateral_withdraw(account=account, asset="USDT", amount=most, idempotency_key=new_key())
    assert balance(account) == Decimal("10001")


def test_a_non_settlement_asset_is_bound_by_its_share_after_haircut(account):
    # given 1 BTC (95,000 at 0.95 → 90,250 of collateral) and a long needing 47,505 of margin
    fund(account, "BTC", "1")
    fund(account, "USDT", "300")
    position_market_fill(
        account=account, instrument="BTCUSDT", side="buy", quantity="5", idempotency_key=new_key()
    )
    # when
    most = collateral_max_withdrawal(account=account, asset="BTC")
    # then the BTC whose haircut value equals the free collateral may leave, no more
    free = Decimal("90250") + balance(account) - Decimal("47505")
    assert most == (free / Decimal("0.95") / Decimal("95000")).quantize(
        Decimal("1e-18"), "ROUND_DOWN"
    )
    with pytest.raises(ApplicationError, match="at most"):
        collateral_withdraw(
            account=account, asset="BTC", amount=most + Decimal("0.0001"), idempotency_key=new_key()
        )
    collateral_withdraw(account=account, asset="BTC", amount=most, idempotency_key=new_key())
    assert collateral_max_withdrawal(account=account, asset="BTC") < Decimal("1e-12")


def test_a_preview_shows_before_and_after_and_writes_nothing(account):
    # given
    fund(account, "USDT", "1000")
    journals = Journal.objects.count()
    # when
    preview = collateral_withdraw.preview(account=account, asset="USDT", amount="400")
    # then
    assert preview.before.collateral_value == Decimal("1000")
    assert preview.after.collateral_value == Decimal("600")
    assert preview.refusal is None
    assert Journal.objects.count() == journals
    assert collateral_withdraw.preview(account=account, asset="USDT", amount="4000").refusal


def test_a_confirm_on_a_stale_preview_is_refused(account):
    # given a preview of a deposit, and then the balance moves
    fund(account, "USDT", "1000")
    preview = collateral_deposit.preview(account=account, asset="USDT", amount="50")
    fund(account, "USDT", "1")
    # when / then
    with pytest.raises(ApplicationError, match="moved since the preview"):
        collateral_deposit(
            account=account,
            asset="USDT",
            amount="50",
            idempotency_key=new_key(),
            expected_fingerprint=preview.fingerprint,
        )
    assert balance(account) == Decimal("1001")
    # and a fresh preview confirms
    fresh = collateral_deposit.preview(account=account, asset="USDT", amount="50")
    collateral_deposit(
        account=account,
        asset="USDT",
        amount="50",
        idempotency_key=new_key(),
        expected_fingerprint=fresh.fingerprint,
    )
    assert balance(account) == Decimal("1051")


def test_a_mark_move_makes_a_preview_stale(account):
    fund(account, "USDT", "10000")
    position_market_fill(
        account=account, instrument="ETHUSDT", side="sell", quantity="2", idempotency_key=new_key()
    )
    preview = collateral_withdraw.preview(account=account, asset="USDT", amount="10")
    set_mark("ETHUSDT", "3410")
    with pytest.raises(ApplicationError, match="review it again"):
        collateral_withdraw(
            account=account,
            asset="USDT",
            amount="10",
            idempotency_key=new_key(),
            expected_fingerprint=preview.fingerprint,
        )

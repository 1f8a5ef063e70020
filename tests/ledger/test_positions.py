from decimal import Decimal

import pytest

from margin.engine.fills import closing_side, slipped_price
from margin.errors import ApplicationError
from margin.models import Fill, Journal, JournalKind, LedgerAccountKind, Position
from margin.services.margin_mode import position_leverage_set, position_margin_mode_switch
from margin.services.positions import position_fill, position_market_fill
from tests.ledger.support import balance, fund, house, new_key, set_mark, trade

D = Decimal


def test_a_market_fill_books_pnl_against_the_market_and_the_fee_to_fees(account):
    # given a long of 1 BTC opened at the mark 95,010 (fee 47.505)
    fund(account, "USDT", "20000")
    trade(account, "buy", "1")
    # when the mark rises to 96,010 and half is sold (fee 0.5 × 96,010 × 0.0005 = 24.0025)
    set_mark("BTCUSDT", "96010")
    receipt = trade(account, "sell", "0.5")
    # then 500 of PnL is realized, both fees went to the fee account
    assert receipt.details["realized_pnl"] == "500"
    assert balance(account) == D("20000") - D("47.505") + D("500") - D("24.0025")
    assert house(LedgerAccountKind.MARKET) == D("-500")
    assert house(LedgerAccountKind.FEES) == D("47.505") + D("24.0025")
    position = Position.objects.get(pk=receipt.position_id)
    assert (position.quantity, position.entry_price, position.realized_pnl) == (
        D("0.5"),
        D("95010"),
        D("500"),
    )
    fill = Fill.objects.get(pk=receipt.fill_id)
    assert (fill.quantity, fill.price, fill.fee, fill.journal_id) == (
        D("-0.5"),
        D("96010"),
        D("24.0025"),
        receipt.journal_id,
    )


def test_an_open_without_enough_free_collateral_is_refused_and_nothing_written(account):
    # given 1,000 USDT: 10x leverage carries about 10,000 of notional
    fund(account, "USDT", "1000")
    journals = Journal.objects.count()
    # when / then
    with pytest.raises(ApplicationError, match="Not enough free collateral"):
        trade(account, "buy", "0.2")
    assert Journal.objects.count() == journals
    assert not Position.objects.filter(margin_account=account).exists()


def test_an_open_beyond_the_bracket_of_its_leverage_is_refused(account):
    # given 125x leverage, allowed only under 50,000 of notional
    fund(account, "USDT", "100000")
    position_leverage_set(
        account=account, instrument="BTCUSDT", leverage="125", idempotency_key=new_key()
    )
    trade(account, "buy", "0.5")
    # when / then growing past 50,000 of notional is refused with the cap
    with pytest.raises(ApplicationError, match="125x is above the 100x allowed"):
        trade(account, "buy", "0.1")


def test_reducing_and_closing_are_allowed_even_under_initial_margin(account):
    # given a long whose mark fell until the pool no longer covers its initial margin
    fund(account, "USDT", "2000")
    trade(account, "buy", "0.2")
    set_mark("BTCUSDT", "90000")
    with pytest.raises(ApplicationError, match="Not enough free collateral"):
        trade(account, "buy", "0.01")
    # when / then
    trade(account, "sell", "0.1")
    receipt = trade(account, "sell", "0.1")
    assert receipt.details["fill"] == "close"
    assert balance(account) == D("2000") - D("9.501") - D("1002") - D("4.5") - D("4.5")


def test_a_reduce_only_account_may_only_reduce(account):
    fund(account, "USDT", "10000")
    trade(account, "sell", "1", "ETHUSDT")
    account.reduce_only = True
    account.save()
    with pytest.raises(ApplicationError, match="reduce-only"):
        trade(account, "sell", "1", "ETHUSDT")
    with pytest.raises(ApplicationError, match="reduce-only"):
        trade(account, "buy", "2", "ETHUSDT")
    assert trade(account, "buy", "0.5", "ETHUSDT").details["fill"] == "reduce"


def test_unknown_instruments_and_sides_are_refused(account):
    fund(account, "USDT", "1000")
    with pytest.raises(ApplicationError, match="Unknown instrument 'XRPUSDT'"):
        trade(account, "buy", "1", "XRPUSDT")
    with pytest.raises(ApplicationError, match="buy or sell"):
        trade(account, "hold", "1")
    with pytest.raises(ApplicationError, match="must be positive"):
        trade(account, "buy", "0")


def test_an_isolated_position_is_margined_and_settled_on_its_own_account(account):
    # given an isolated BTC position opened with 10x: 0.5 × 95,010 / 10 = 4,750.5 fenced
    fund(account, "USDT", "10000")
    position_margin_mode_switch(
        account=account, instrument="BTCUSDT", mode="isolated", idempotency_key=new_key()
    )
    trade(account, "buy", "0.5")
    assert balance(account, LedgerAccountKind.ISOLATED) == D("4750.5")
    assert balance(account) == D("10000") - D("4750.5") - D("23.7525")
    # when it is closed 2,000 higher (PnL 1,000, fee 0.5 × 97,010 × 0.0005 = 24.2525)
    set_mark("BTCUSDT", "97010")
    trade(account, "sell", "0.5")
    # then PnL and fee went through the isolated account, and all of it came back to the wallet
    assert balance(account, LedgerAccountKind.ISOLATED) == 0
    assert balance(account) == D("10000") - D("23.7525") + D("1000") - D("24.2525")
    assert house(LedgerAccountKind.MARKET) == D("-1000")


def test_a_preview_of_a_fill_quotes_the_new_position_without_writing(account):
    fund(account, "USDT", "10000")
    preview = position_market_fill.preview(
        account=account, instrument="SOLUSDT", side="buy", quantity="100"
    )
    assert preview.before.initial_margin == 0
    assert preview.after.initial_margin == D("100") * D("230.05") / D("10")
    assert [row.id for row in preview.after.positions] == ["SOLUSDT"]
    assert not Position.objects.filter(margin_account=account).exists()
    assert position_market_fill.preview(
        account=account, instrument="SOLUSDT", side="buy", quantity="1000"
    ).refusal.startswith("Not enough free collateral")


def test_a_forced_fill_books_once_per_reference_with_its_fee_to_the_insurance_fund(account):
    # given an isolated long about to be liquidated below its bankruptcy price
    fund(account, "USDT", "10000")
    position_margin_mode_switch(
        account=account, instrument="BTCUSDT", mode="isolated", idempotency_key=new_key()
    )
    trade(account, "buy", "1")
    isolated = balance(account, LedgerAccountKind.ISOLATED)
    wallet = balance(account)
    # when the liquidation engine closes it at 85,000 (loss 10,010) with a 100 fee, twice
    arguments = {
        "account": account,
        "instrument": "BTCUSDT",
        "side": "sell",
        "quantity": D("1"),
        "price": D("85000"),
        "reason": "liquidation",
        "reference": "case-7:step-1",
        "fee": D("100"),
    }
    first = position_fill(**arguments)
    again = position_fill(**arguments)
    # then it booked once; the insurance fund took the fee and covered the deficit
    assert again.replayed and again.fill_id == first.fill_id
    assert Fill.objects.filter(reason="liquidation").count() == 1
    deficit = D("10010") + D("100") - isolated
    assert house(LedgerAccountKind.INSURANCE) == D("100") - deficit
    assert balance(account, LedgerAccountKind.ISOLATED) == 0
    assert balance(account) == wallet
    assert Journal.objects.get(pk=first.journal_id).kind == JournalKind.LIQUIDATION


def test_a_forced_fill_at_the_slipped_mark_of_a_many_decimal_mark_is_booked(account):
    # given a long and a mark with 18 decimals (as the price refresh writes them)
    fund(account, "USDT", "10000")
    trade(account, "buy", "0.1")
    mark = D("95123.456789012345678901")
    set_mark("BTCUSDT", str(mark))
    # when the desk closes it at the mark moved by the slippage
    price = slipped_price(mark, D("0.1"), D("0.002"))
    receipt = position_fill(
        account=account,
        instrument="BTCUSDT",
        side=closing_side(D("0.1")),
        quantity=D("0.1"),
        price=price,
        reason="desk",
        reference="slipped-mark",
    )
    # then the price has 8 decimals and the fill is booked at it
    assert price == D("94933.20987543")
    assert Fill.objects.get(pk=receipt.fill_id).price == price

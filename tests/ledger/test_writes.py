"""A write is declared once (its plan and its booking); its preview and its submit are made from
that, take the same arguments and refuse the same input."""

from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import IdempotencyRecord, Journal
from margin.services.collateral import collateral_deposit, collateral_withdraw
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from tests.ledger.support import balance, fund, new_key


def test_the_arguments_of_each_trader_write_are_its_plans_keywords():
    assert collateral_deposit.parameters == ("asset", "amount")
    assert position_market_fill.parameters == ("instrument", "side", "quantity")
    assert position_margin_mode_switch.parameters == ("instrument", "mode", "isolated_margin")


def test_the_preview_shows_what_the_submit_books(account):
    fund(account, "USDT", "1000")
    preview = collateral_withdraw.preview(account=account, asset="USDT", amount="250")
    receipt = collateral_withdraw.submit(
        account=account,
        asset="USDT",
        amount="250",
        idempotency_key=new_key(),
        expected_fingerprint=preview.fingerprint,
    )
    assert preview.refusal is None
    assert preview.details == {"asset": "USDT", "amount": "250"}
    assert receipt.details == {**preview.details, "balance": "750"}
    assert preview.after.collateral_value == Decimal(750)
    assert balance(account) == Decimal(750)


def test_a_refusal_of_the_preview_is_the_error_of_the_submit(account):
    fund(account, "USDT", "10")
    preview = collateral_withdraw.preview(account=account, asset="USDT", amount="11")
    key = new_key()
    with pytest.raises(ApplicationError) as refused:
        collateral_withdraw.submit(account=account, asset="USDT", amount="11", idempotency_key=key)
    assert refused.value.message == preview.refusal
    assert not IdempotencyRecord.objects.filter(key=key).exists()


def test_arguments_the_plan_does_not_take_are_refused_before_anything_is_read(account):
    journals = Journal.objects.count()
    with pytest.raises(TypeError):
        collateral_deposit.preview(account=account, asset="USDT", amount="1", side="buy")
    with pytest.raises(TypeError):
        collateral_deposit.submit(account=account, asset="USDT", idempotency_key=new_key())
    assert Journal.objects.count() == journals


def test_a_default_left_out_is_the_same_request_as_the_default_given(account):
    # a flat position switched to isolated without an amount, then replayed with the default
    # spelled out under the same key: one booking, the second a replay
    key = new_key()
    first = position_margin_mode_switch(
        account=account, instrument="BTCUSDT", mode="isolated", idempotency_key=key
    )
    again = position_margin_mode_switch(
        account=account,
        instrument="BTCUSDT",
        mode="isolated",
        isolated_margin=None,
        idempotency_key=key,
    )
    assert again.replayed and not first.replayed
    assert again.position_id == first.position_id

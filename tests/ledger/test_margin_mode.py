from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import Journal, LedgerAccountKind, Position
from margin.services.margin_mode import (
    isolated_margin_add,
    isolated_margin_remove,
    position_leverage_set,
    position_margin_mode_switch,
)
from tests.ledger.support import balance, fund, new_key, set_mark, trade

D = Decimal


def buy(account, quantity: str, instrument: str = "BTCUSDT"):
    return trade(account, "buy", quantity, instrument)


def switch(account, mode: str, margin: str | None = None):
    return position_margin_mode_switch(
        account=account,
        instrument="BTCUSDT",
        mode=mode,
        isolated_margin=None if margin is None else D(margin),
        idempotency_key=new_key(),
    )


def test_an_open_position_moves_to_isolated_with_the_margin_chosen_and_back(account):
    # given an open cross long of 0.5 BTC at 10x: initial margin 4,750.5
    fund(account, "USDT", "10000")
    buy(account, "0.5")
    wallet = balance(account)
    # when it moves to isolated with 6,000
    switch(account, "isolated", "6000")
    # then 6,000 is fenced
    assert balance(account, LedgerAccountKind.ISOLATED) == D("6000")
    assert balance(account) == wallet - D("6000")
    assert Position.objects.get(margin_account=account).margin_mode == "isolated"
    # and moving back releases all of it
    switch(account, "cross")
    assert balance(account, LedgerAccountKind.ISOLATED) == 0
    assert balance(account) == wallet


def test_a_switch_to_isolated_under_initial_margin_is_refused_with_the_reason(account):
    fund(account, "USDT", "10000")
    buy(account, "0.5")
    journals = Journal.objects.count()
    with pytest.raises(ApplicationError, match=r"4,750\.50 USD under its initial margin"):
        switch(account, "isolated", "0.0001")
    preview = position_margin_mode_switch.preview(
        account=account, instrument="BTCUSDT", mode="isolated", isolated_margin=D("4000")
    )
    assert "750.50 USD under its initial margin" in preview.refusal
    assert Journal.objects.count() == journals


def test_a_switch_that_leaves_the_cross_pool_under_initial_margin_is_refused(account):
    # given a cross long using most of the wallet, and a second position to isolate
    fund(account, "USDT", "6000")
    buy(account, "0.5")
    buy(account, "2", "ETHUSDT")
    # when the BTC position would take 1,000 more than it needs away from the pool
    with pytest.raises(ApplicationError, match="cross pool would be"):
        switch(account, "isolated", "5750.5")
    assert Position.objects.get(instrument__symbol="BTCUSDT").margin_mode == "cross"


def test_moving_back_to_cross_is_refused_when_the_pool_would_not_cover_it(account):
    # given an isolated long funded at its initial margin, with little left in the wallet
    fund(account, "USDT", "5000")
    switch(account, "isolated")
    buy(account, "0.5")
    # when its mark falls 1,010: a 505 loss the wallet's 225.7475 cannot absorb in cross
    set_mark("BTCUSDT", "94000")
    # then
    with pytest.raises(ApplicationError, match=r"cross pool would be 228\.75 USD under"):
        switch(account, "cross")
    assert Position.objects.get(margin_account=account).margin_mode == "isolated"


def test_leverage_is_set_within_the_bracket_cap_at_the_current_notional(account):
    # given a long of 1 BTC: 95,010 of notional, bracket 2 (max 100x)
    fund(account, "USDT", "20000")
    buy(account, "1")
    # when / then
    with pytest.raises(ApplicationError, match="above the 100x maximum"):
        position_leverage_set(
            account=account, instrument="BTCUSDT", leverage="125", idempotency_key=new_key()
        )
    position_leverage_set(
        account=account, instrument="BTCUSDT", leverage="100", idempotency_key=new_key()
    )
    assert Position.objects.get(margin_account=account).leverage == D("100")
    preview = position_leverage_set.preview(account=account, instrument="BTCUSDT", leverage="1")
    assert preview.after.initial_margin == D("95010")
    assert "under its initial margin" in preview.refusal
    with pytest.raises(ApplicationError, match="at least 1"):
        position_leverage_set(
            account=account, instrument="BTCUSDT", leverage="0.5", idempotency_key=new_key()
        )


def test_isolated_margin_is_added_and_removed_down_to_its_initial_margin(account):
    # given an isolated long with its initial margin 4,750.5
    fund(account, "USDT", "10000")
    switch(account, "isolated")
    buy(account, "0.5")
    # when
    isolated_margin_add(
        account=account, instrument="BTCUSDT", amount="1000", idempotency_key=new_key()
    )
    # then
    assert balance(account, LedgerAccountKind.ISOLATED) == D("5750.5")
    preview = isolated_margin_remove.preview(account=account, instrument="BTCUSDT", amount="1000")
    assert preview.refusal is None
    assert preview.after.positions[0].isolated_margin == D("4750.5")
    with pytest.raises(ApplicationError, match="under its initial margin"):
        isolated_margin_remove(
            account=account, instrument="BTCUSDT", amount="1000.01", idempotency_key=new_key()
        )
    with pytest.raises(ApplicationError, match="cannot be removed"):
        isolated_margin_remove(
            account=account, instrument="BTCUSDT", amount="9000", idempotency_key=new_key()
        )
    assert (
        "wallet holds only"
        in isolated_margin_add.preview(
            account=account, instrument="BTCUSDT", amount="100000"
        ).refusal
    )
    isolated_margin_remove(
        account=account, instrument="BTCUSDT", amount="1000", idempotency_key=new_key()
    )
    assert balance(account, LedgerAccountKind.ISOLATED) == D("4750.5")


def test_isolated_margin_needs_an_isolated_position(account):
    fund(account, "USDT", "10000")
    buy(account, "0.1")
    with pytest.raises(ApplicationError, match="switch it to isolated first"):
        isolated_margin_add(
            account=account, instrument="BTCUSDT", amount="10", idempotency_key=new_key()
        )

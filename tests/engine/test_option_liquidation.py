"""The option step of a liquidation plan: options close at their mark, the one that frees the
most requirement per unit of fee first, until the requirement ratio is back under the target.

After Deribit's incremental liquidation of a portfolio-margin account (support.deribit.com,
"Liquidations", article 25944769313309: part of the positions is closed and "as soon as the
required maintenance margin is lower than the margin balance of the account, liquidation will
stop"; deribit.com/docs/auto-liquidation/: options are closed so as to reduce the risk)."""

from decimal import Decimal

import pytest

from margin.engine.liquidation import (
    account_after,
    option_close_plan,
    options_closed,
    requirement_ratio,
)
from margin.engine.precision import engine_context
from margin.engine.reference import quote_account
from margin.engine.types import AccountInput, OptionInput
from tests.engine.support import btc_perp, usdt

D = Decimal
FEE = D("0.005")
TARGET = D("0.8")
LOT = D("1e-8")


@pytest.fixture(autouse=True)
def engine_precision():
    with engine_context():
        yield


def short_put(option_id: str, strike: str, quantity: str) -> OptionInput:
    """A short BTC put, 7 days, 60 % vol, the forward at 80,000 after a crash."""
    return OptionInput(
        id=option_id,
        underlying="BTC",
        option_type="put",
        strike=D(strike),
        expiry_days=D(7),
        implied_vol=D("0.6"),
        underlying_price=D(80000),
        side=-1,
        quantity=D(quantity),
        entry_price=D(0),
    )


def book(cash: str) -> AccountInput:
    # deep in the money (premium ≈ 10,000: a dear close) and out of the money (cheap)
    return AccountInput(
        collateral=(usdt(cash),),
        options=(short_put("ITM", "90000", "1"), short_put("OTM", "76000", "3")),
    )


def marks_of(account: AccountInput) -> dict[str, Decimal]:
    return {row.id: row.mark_price for row in quote_account(account).options}


def freed_per_fee(account: AccountInput, option: OptionInput) -> Decimal:
    before = quote_account(account).maintenance_margin
    closed = options_closed(
        account, {option.id: option.quantity}, marks=marks_of(account), fee_rate=FEE
    )
    mark = marks_of(account)[option.id]
    return (before - quote_account(closed).maintenance_margin) / (option.quantity * mark * FEE)


def test_the_option_freeing_most_per_fee_closes_first_and_just_enough():
    account = book("20000")
    # 20,000 − 10,248.56 − 3 × 1,061.88 = 6,565.79 against a grid MM of 23,491.89: ratio 3.58
    assert requirement_ratio(quote_account(account)) > 3
    ranked = sorted(account.options, key=lambda o: freed_per_fee(account, o), reverse=True)
    plan = option_close_plan(account, target_ratio=TARGET, fee_rate=FEE)
    assert plan.reaches_target
    assert [c.position_id for c in plan.closes] == [o.id for o in ranked]
    # the cheap out-of-the-money puts free more per unit of fee than the dear in-the-money one:
    # all three close, then part of the in-the-money one
    assert [c.position_id for c in plan.closes] == ["OTM", "ITM"]
    assert plan.closes[0].remaining_quantity == 0 < plan.closes[1].remaining_quantity
    closes = {c.position_id: c.quantity for c in plan.closes}
    marks = marks_of(account)
    after = quote_account(options_closed(account, closes, marks=marks, fee_rate=FEE))
    assert requirement_ratio(after) == plan.margin_ratio_after <= TARGET
    # the last close is the least that reaches the target: one lot less does not
    last = plan.closes[-1]
    fewer = {**closes, last.position_id: last.quantity - LOT}
    short = quote_account(options_closed(account, fewer, marks=marks, fee_rate=FEE))
    assert requirement_ratio(short) > TARGET
    # at the mark only the fee moves the margin balance
    fees = sum((c.quantity * c.mark_price * FEE for c in plan.closes), D(0))
    paid = quote_account(account).margin_balance - after.margin_balance
    assert abs(paid - fees) < D("1e-30")
    assert all(c.fee == c.quantity * c.mark_price * FEE for c in plan.closes)


def test_a_frozen_option_is_never_traded_and_an_unreachable_target_closes_all_the_others():
    account = book("9000")
    plan = option_close_plan(account, target_ratio=D("0.05"), fee_rate=FEE, frozen={"ITM"})
    assert [(c.position_id, c.quantity, c.remaining_quantity) for c in plan.closes] == [
        ("OTM", D(3), D(0))
    ]
    assert not plan.reaches_target


def test_an_account_under_the_target_closes_nothing():
    account = book("200000")
    plan = option_close_plan(account, target_ratio=TARGET, fee_rate=FEE)
    assert plan.closes == () and plan.reaches_target


def test_the_linear_plan_keeps_the_options_of_the_account():
    # reducing a perpetual leaves the options in the pool: the grid still margins them
    account = AccountInput(
        collateral=(usdt("13000"),),
        positions=(btc_perp("P", quantity="0.5", entry="80000", mark="80000"),),
        options=(short_put("ITM", "90000", "1"),),
    )
    after = account_after(account, {"P": D("0.2")}, slippage=D("0.001"))
    assert after.options == account.options
    assert quote_account(after).portfolio is not None

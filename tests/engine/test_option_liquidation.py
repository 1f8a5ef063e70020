"""The liquidation plan of a cross pool holding options, in the order Deribit publishes.

- Standard margin (deribit.com/docs/auto-liquidation/): "first liquidate future positions and
  after that liquidate any option positions, in such a way that the risk of the position will
  be reduced (basically striving for a 'delta neutral' position where possible) ... options
  would get liquidated first, where options delta's are bigger and opposite direction than all
  other delta's".
- Portfolio margin (support.deribit.com/hc/en-us/articles/25944825289245, "1 August 2023"):
  the instrument "contributing the most to the overall margin requirements" first, then the
  next; when none trades, "delta hedging via the Perpetual (if this would also reduce the
  maintenance margin)".
Each step is the least lot that brings the requirement ratio back under the line, the last
one partial; options close at their mark, the fee their only cost.
"""

from dataclasses import replace
from decimal import Decimal

import pytest

from margin.engine.book_liquidation import (
    FUTURE,
    FUTURES_FIRST,
    HEDGE,
    LARGEST_CONTRIBUTION_FIRST,
    OPTION,
    OPTIONS_FIRST,
    cross_plan,
    options_lead,
    scaled_target,
)
from margin.engine.liquidation import account_after, options_closed, requirement, requirement_ratio
from margin.engine.options import normal_cdf
from margin.engine.precision import engine_context
from margin.engine.reference import quote_account
from margin.engine.scheme import account_requirement
from margin.engine.types import AccountInput, OptionInput
from tests.engine.support import btc_perp, usdt

D = Decimal
FEE = D("0.005")
COST = D("0.007")  # a linear step: slippage 0.2 % and the fee 0.5 %
LINE = D("0.8")
LOT = D("1e-8")
FORWARD = D(80000)


@pytest.fixture(autouse=True)
def engine_precision():
    with engine_context():
        yield


def option(option_id: str, kind: str, strike: str, quantity: str, side: int = -1) -> OptionInput:
    """A BTC option, 7 days, 60 % vol, the forward at 80,000 after a crash."""
    return OptionInput(
        id=option_id,
        underlying="BTC",
        option_type=kind,
        strike=D(strike),
        expiry_days=D(7),
        implied_vol=D("0.6"),
        underlying_price=FORWARD,
        side=side,
        quantity=D(quantity),
        entry_price=D(0),
    )


def plan_of(account: AccountInput, scheme: str = "standard", **options):
    return cross_plan(
        account,
        scheme=scheme,
        line=LINE,
        target_ratio=D("0.7"),
        slippage=COST,
        fee_rate=FEE,
        **options,
    )


def short_puts(cash: str) -> AccountInput:
    # deep in the money (premium ≈ 10,000: a dear close) and out of the money (cheap)
    return AccountInput(
        collateral=(usdt(cash),),
        options=(option("ITM", "put", "90000", "1"), option("OTM", "put", "76000", "3")),
    )


def covered_call(cash: str) -> AccountInput:
    """Long 1 BTC perpetual at 80,000, short one 84,000 call."""
    return AccountInput(
        collateral=(usdt(cash),),
        positions=(btc_perp("P", quantity="1", entry="80000", mark="80000"),),
        options=(option("C", "call", "84000", "1"),),
    )


def marks_of(account: AccountInput) -> dict[str, Decimal]:
    return {row.id: row.mark_price for row in quote_account(account).options}


def call_delta(strike: str) -> Decimal:
    """Black-76 N(d1), 7 days at 60 %, on the forward of 80,000, by hand."""
    t = D(7) / 365
    d1 = ((FORWARD / D(strike)).ln() + D("0.18") * t) / (D("0.6") * t.sqrt())
    return normal_cdf(d1)


def freed_per_fee(account: AccountInput, held: OptionInput) -> Decimal:
    before = requirement(quote_account(account))
    closed = options_closed(
        account, {held.id: held.quantity}, marks=marks_of(account), fee_rate=FEE
    )
    mark = marks_of(account)[held.id]
    return (before - requirement(quote_account(closed))) / (held.quantity * mark * FEE)


def test_options_only_close_the_one_freeing_most_per_fee_first_and_just_enough():
    account = short_puts("20000")
    # 20,000 − 10,248.56 − 3 × 1,061.88 = 6,565.79 against a grid MM of 23,491.89: ratio 3.58
    assert requirement_ratio(quote_account(account)) > 3
    ranked = sorted(account.options, key=lambda o: freed_per_fee(account, o), reverse=True)
    plan = plan_of(account)
    assert plan.reaches_target and plan.order == FUTURES_FIRST  # no future to go first
    assert [(s.kind, s.position_id) for s in plan.steps] == [(OPTION, o.id) for o in ranked]
    # the cheap out-of-the-money puts free more per unit of fee than the dear in-the-money one:
    # all three close, then part of the in-the-money one
    assert [s.position_id for s in plan.steps] == ["OTM", "ITM"]
    assert plan.steps[0].remaining_quantity == 0 < plan.steps[1].remaining_quantity
    closes = {s.position_id: s.quantity for s in plan.steps}
    marks = marks_of(account)
    after = quote_account(options_closed(account, closes, marks=marks, fee_rate=FEE))
    assert requirement_ratio(after) == plan.margin_ratio_after <= LINE
    # the last close is the least that reaches the line: one lot less does not
    last = plan.steps[-1]
    fewer = {**closes, last.position_id: last.quantity - LOT}
    short = quote_account(options_closed(account, fewer, marks=marks, fee_rate=FEE))
    assert requirement_ratio(short) > LINE
    # at the mark only the fee moves the margin balance
    fees = sum((s.quantity * s.price * FEE for s in plan.steps), D(0))
    paid = quote_account(account).margin_balance - after.margin_balance
    assert abs(paid - fees) < D("1e-30")
    assert all(
        s.cost == s.quantity * s.price * FEE and s.price == marks[s.position_id] for s in plan.steps
    )


def test_a_frozen_option_is_never_traded_and_an_unreachable_line_closes_all_the_others():
    plan = cross_plan(
        short_puts("9000"),
        scheme="standard",
        line=D("0.05"),
        target_ratio=D("0.05"),
        slippage=COST,
        fee_rate=FEE,
        frozen=frozenset({"ITM"}),
    )
    assert [(s.position_id, s.quantity, s.remaining_quantity) for s in plan.steps] == [
        ("OTM", D(3), D(0))
    ]
    assert not plan.reaches_target


def test_an_account_under_the_line_plans_nothing():
    plan = plan_of(short_puts("200000"))
    assert plan.steps == () and plan.reaches_target


def test_standard_reduces_the_future_first_to_delta_neutral_then_the_option():
    """Before/after, by hand: the call's delta N(d1) = 0.29265526 (d1 = (ln(80/84) + 0.18 ×
    7/365) ÷ (0.6 × √(7/365)) = −0.5456), so the book is long 1 − 0.2927 = 0.7073 BTC.

    The balance is 5,000 less the call at its mark (1,172.48); the future's cost is
    0.70734474 × 80,000 × 0.7 % = 396.11305440; the grid sets the requirement.

    | step                   | perpetual  | short calls | margin balance | ratio          |
    | before                 | 1          | 1           | 3,827.52       | 1.62           |
    | future: sell 0.70734474| 0.29265526 | 1           | 3,431.41       | 1.30           |
    | option: buy 0.26916538 | 0.29265526 | 0.73083462  | 3,429.83       | 0.80 (line)    |
    """
    account = covered_call("5000")
    quote = quote_account(account)
    assert D("1.61") < requirement_ratio(quote) < D("1.62")
    assert not options_lead(account, quote)  # the call's −0.29 is smaller than the perp's +1
    plan = plan_of(account)
    assert plan.order == FUTURES_FIRST and plan.reaches_target
    future, close = plan.steps
    neutral = D(1) - call_delta("84000")
    assert abs(neutral - D("0.70734474")) < D("1e-8")
    assert (future.kind, future.position_id, future.side) == (FUTURE, "P", 1)
    # the future is cut to delta neutral (floored to the lot), no further
    assert future.quantity == (neutral / LOT).to_integral_value(rounding="ROUND_FLOOR") * LOT
    assert future.price == D(80000) * (1 - COST)
    assert future.cost == future.quantity * 80000 * COST == D("396.1130544")
    after_future = quote_account(account_after(account, {"P": future.quantity}, slippage=COST))
    assert after_future.margin_balance == quote.margin_balance - future.cost
    assert D("1.29") < future.margin_ratio_after < D("1.30")
    # then the option, by the least lot that reaches the line
    assert (close.kind, close.position_id) == (OPTION, "C")
    assert close.quantity == D("0.26916538")
    assert close.margin_ratio_after <= LINE == plan.line
    fewer = account_after(account, {"P": future.quantity}, slippage=COST)
    fewer = options_closed(
        fewer, {"C": close.quantity - LOT}, marks=marks_of(account), fee_rate=FEE
    )
    assert requirement_ratio(quote_account(fewer)) > LINE


def test_standard_closes_options_first_when_their_delta_is_larger_and_opposite():
    # long 0.5 BTC against three short at-the-money calls: −3 × 0.5138 = −1.54 BTC
    account = AccountInput(
        collateral=(usdt("9000"),),
        positions=(btc_perp("P", quantity="0.5", entry="80000", mark="80000"),),
        options=(option("C", "call", "80000", "3"),),
    )
    quote = quote_account(account)
    (row,) = quote.options
    assert abs(row.position_delta + 3 * call_delta("80000")) < D("1e-40")
    assert options_lead(account, quote)
    plan = plan_of(account)
    assert plan.order == OPTIONS_FIRST
    assert plan.steps[0].kind == OPTION and plan.reaches_target
    # closing the future first would have taken the book further from neutral
    assert all(step.kind == OPTION for step in plan.steps)


def test_portfolio_takes_the_largest_contributor_first():
    """The covered call under the portfolio scheme: the instrument whose whole close frees the
    most requirement goes first. Closing the call frees nearly all of it; closing the
    perpetual would leave a naked call and add to it."""
    account = covered_call("5000")
    quote = quote_account(account)
    marks = marks_of(account)
    without_call = options_closed(account, {"C": D(1)}, marks=marks, fee_rate=FEE)
    without_perp = account_after(account, {"P": D(1)}, slippage=COST)
    call_share = requirement(quote) - requirement(quote_account(without_call))
    perp_share = requirement(quote) - requirement(quote_account(without_perp))
    assert call_share > 0 > perp_share
    plan = plan_of(account, "portfolio")
    assert plan.order == LARGEST_CONTRIBUTION_FIRST
    (close,) = plan.steps
    assert (close.kind, close.position_id) == (OPTION, "C")
    # the least lot of the call that reaches the line (the grid leaves with the last option:
    # then only the perpetual's tiered MM is left, hence the whole close)
    assert close.margin_ratio_after <= LINE
    # the standard scheme cut the future first on the same book
    assert plan_of(account).steps[0].kind == FUTURE


def test_portfolio_hedges_the_delta_through_the_perpetual_when_nothing_else_trades():
    """Both puts on a stale price: no close can trade. Net delta of the two short puts is
    −(N(d1) − 1) × 1 − (N(d1) − 1) × 3 by hand: the hedge sells that much of the perpetual,
    which lowers the requirement (the grid's worst fall is hedged)."""
    account = short_puts("20000")
    perpetual = btc_perp("BTCUSDT", quantity="1", entry="80000", mark="80000")
    plan = plan_of(
        account, "portfolio", frozen=frozenset({"ITM", "OTM"}), perpetuals={"BTC": perpetual}
    )
    (hedge,) = plan.steps
    delta = (1 - call_delta("90000")) + 3 * (1 - call_delta("76000"))
    assert (hedge.kind, hedge.position_id, hedge.side) == (HEDGE, "BTCUSDT", -1)
    assert hedge.quantity == (delta / LOT).to_integral_value(rounding="ROUND_FLOOR") * LOT
    assert hedge.remaining_quantity == hedge.quantity  # a new leg
    assert hedge.price == D(80000) * (1 - COST)
    before = plan.margin_ratio_before
    assert hedge.margin_ratio_after < before and not plan.reaches_target
    # without a perpetual to trade, nothing is done
    assert plan_of(account, "portfolio", frozen=frozenset({"ITM", "OTM"})).steps == ()


def test_a_hedge_added_to_a_leg_the_owner_also_holds_elsewhere_grows_the_owners_holding():
    # given the frozen short puts beside a short of 0.1 BTC on the perpetual, whose owner holds
    # 0.1 more in another account
    held = replace(
        btc_perp("BTCUSDT", side=-1, quantity="0.1", entry="80000", mark="80000"),
        owner_quantity=D("0.2"),
    )
    account = replace(short_puts("20000"), positions=(held,))
    # when  the hedge sells onto that leg more than the other account holds
    plan = plan_of(account, "portfolio", frozen=frozenset({"ITM", "OTM"}), perpetuals={"BTC": held})
    # then  the plan is quoted with the owner's holding grown by the hedge (kept at 0.2, it
    #       would be less than the leg: refused by the engine)
    (hedge,) = plan.steps
    assert hedge.quantity > D("0.1")
    assert hedge.remaining_quantity == D("0.1") + hedge.quantity


def requirement_with(stress_loss: str):
    """A portfolio account: tiered MM 400, grid MM 2,000, and `stress_loss`."""
    return account_requirement(
        scheme="portfolio",
        collateral_value=D(10000),
        unrealized_pnl=D(0),
        margin_balance=D(10000),
        tiered_maintenance=D(400),
        tiered_initial=D(800),
        stress_loss=D(stress_loss),
        margin_call_ratio=D("0.8"),
        grid_maintenance=D(2000),
        grid_initial=D(4000),
    )


def test_the_plans_aim_at_the_line_scaled_when_the_stress_loss_binds():
    """The option step and the linear step stop at the same line: with the stress loss
    binding, a ratio in the plans' terms (max(tiered MM, grid MM) ÷ balance) of
    line × max(tiered, grid) ÷ stress is the account's line."""
    stressed = requirement_with("3000")
    assert stressed.binding == "stress"
    assert scaled_target(D("0.9"), stressed) == D("0.9") * 2000 / 3000 == D("0.6")
    grid = requirement_with("1000")
    assert grid.binding == "grid"
    assert scaled_target(D("0.9"), grid) == D("0.9")


def test_the_linear_plan_keeps_the_options_of_the_account():
    # reducing a perpetual leaves the options in the pool: the grid still margins them
    account = AccountInput(
        collateral=(usdt("13000"),),
        positions=(btc_perp("P", quantity="0.5", entry="80000", mark="80000"),),
        options=(option("ITM", "put", "90000", "1"),),
    )
    after = account_after(account, {"P": D("0.2")}, slippage=D("0.001"))
    assert after.options == account.options
    assert quote_account(after).portfolio is not None

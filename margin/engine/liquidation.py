"""Liquidation plan of an account's cross pool: what to reduce, in what order, how much.

The rule, after Binance's partial liquidation of cross positions: positions are taken one at a
time, the one with the largest maintenance margin first (it frees the most margin; ties go to
the worst uPnL, then the id), and each is reduced only as far as needed to bring the margin
ratio down to the target, closed whole when even that is not enough. A reduction trades at the
mark moved against the account by the slippage (a long sells at mark × (1 − slippage), a short
buys at mark × (1 + slippage)), which realizes a loss of quantity × mark × slippage; the realized
PnL settles into the account as cash. Isolated positions stand alone and are not part of it.
"""

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from margin.engine.errors import EngineInputError
from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, PositionQuote, quote_account
from margin.engine.types import ISOLATED, ONE, ZERO, AccountInput, CollateralLine, PositionInput

DEFAULT_QUANTITY_STEP = Decimal("1e-8")
"""Reductions are whole multiples of this lot, rounded up, so that the ratio ends at or under
the target rather than a rounding above it."""
DEFAULT_SETTLEMENT_ASSET = "USDT"


@dataclass(frozen=True)
class LiquidationStep:
    position_id: str
    quantity: Decimal
    remaining_quantity: Decimal
    execution_price: Decimal
    slippage_loss: Decimal
    realized_pnl: Decimal
    margin_ratio_after: Decimal | None


@dataclass(frozen=True)
class LiquidationPlan:
    """The steps in order and what they lead to. `insurance_fund_cost` is the deficit left if the
    whole cross pool were closed at the slippage (0 when its equity stays positive)."""

    target_ratio: Decimal
    slippage: Decimal
    margin_ratio_before: Decimal | None
    steps: tuple[LiquidationStep, ...]
    margin_ratio_after: Decimal | None
    reaches_target: bool
    bankruptcy_prices: dict[str, Decimal | None]
    equity_after_full_close: Decimal
    insurance_fund_cost: Decimal


def _under_target(quote: AccountQuote, target_ratio: Decimal) -> bool:
    return quote.margin_ratio is not None and quote.margin_ratio <= target_ratio


def _liquidation_order(quote: AccountQuote) -> list[str]:
    cross = [row for row in quote.positions if row.margin_mode != ISOLATED]
    return [
        row.id
        for row in sorted(
            cross, key=lambda row: (-row.maintenance_margin, row.unrealized_pnl, row.id)
        )
    ]


@exact
def quantity_to_keep(
    position: PositionInput,
    row: PositionQuote,
    quote: AccountQuote,
    *,
    mm_scale: Decimal,
    target_ratio: Decimal,
    slippage: Decimal,
) -> Decimal:
    """The largest quantity q′ ≤ q of this position that brings the cross margin ratio to the
    target or under, or 0 when none does.

    With W the margin balance, M the other positions' MM, x the mark and t the target, keeping
    q′ costs (q − q′)·x·slippage and leaves MM(q′·x), so the condition is
    h(q′) = M + m·MM(q′·x) − t·(W − (q − q′)·x·slippage) ≤ 0. MM is the upper envelope of its
    bracket lines (convex: that is what cum does), so h ≤ 0 exactly when every bracket's line
    h_k(q′) = a_k·q′ + b_k is ≤ 0, with a_k = x·(m·mmr_k − t·slippage) and
    b_k = M − m·cum_k − t·W + t·q·x·slippage: the bracket change as the notional shrinks is
    respected without walking the brackets. Lines with a_k > 0 bound q′ from above, lines
    with a_k < 0 from below.
    """
    mark, quantity = position.mark_price, position.quantity
    other = quote.maintenance_margin - row.maintenance_margin
    upper, lower = quantity, ZERO
    for bracket in position.brackets.brackets:
        slope = mark * (mm_scale * bracket.mmr - target_ratio * slippage)
        offset = (
            other
            - mm_scale * bracket.cum
            - target_ratio * quote.margin_balance
            + target_ratio * quantity * mark * slippage
        )
        if slope > 0:
            upper = min(upper, -offset / slope)
        elif slope < 0:
            lower = max(lower, -offset / slope)
        elif offset > 0:
            return ZERO
    return upper if lower <= upper else ZERO


@exact
def execution_price(position: PositionInput, slippage: Decimal) -> Decimal:
    """A reducing order fills at the mark moved against the account:
    mark × (1 − side × slippage)."""
    return position.mark_price * (ONE - position.side * slippage)


@exact
def realized_pnl(position: PositionInput, quantity: Decimal, slippage: Decimal) -> Decimal:
    """PnL realized by reducing the position by `quantity` at its execution price:
    side × quantity × (execution price − entry)."""
    return position.side * quantity * (execution_price(position, slippage) - position.entry_price)


@exact
def account_after(
    account: AccountInput,
    reductions: dict[str, Decimal],
    *,
    slippage: Decimal,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
) -> AccountInput:
    """The account once each position id in `reductions` is reduced by that quantity at the
    execution price: smaller (or closed) positions and the realized PnL settled as one cash line
    (price 1, no haircut)."""
    positions = []
    realized = ZERO
    for position in account.positions:
        reduced = reductions.get(position.id, ZERO)
        realized += realized_pnl(position, reduced, slippage)
        if reduced < position.quantity:
            positions.append(replace(position, quantity=position.quantity - reduced))
    settlement = CollateralLine(asset=settlement_asset, quantity=realized, price=ONE)
    return AccountInput(
        collateral=(*account.collateral, settlement) if reductions else account.collateral,
        positions=tuple(positions),
        credit_tier=account.credit_tier,
    )


@exact
def liquidation_plan(
    account: AccountInput,
    *,
    target_ratio: Decimal,
    slippage: Decimal,
    quantity_step: Decimal = DEFAULT_QUANTITY_STEP,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
) -> LiquidationPlan:
    """The reductions that take the cross margin ratio to `target_ratio` or under (nothing when
    it already is), solved exactly one position at a time; the cross positions' bankruptcy
    prices; the insurance fund's cost should the pool be closed whole."""
    if not 0 < target_ratio <= 1:
        raise EngineInputError("target_ratio", f"must lie in (0, 1], got {target_ratio}")
    if not 0 <= slippage < 1:
        raise EngineInputError("slippage", f"must lie in [0, 1), got {slippage}")
    if quantity_step <= 0:
        raise EngineInputError("quantity_step", f"must be positive, got {quantity_step}")
    quote = quote_account(account)
    by_id = {position.id: position for position in account.positions}
    reductions: dict[str, Decimal] = {}
    steps = []
    current = quote
    for position_id in _liquidation_order(quote):
        if _under_target(current, target_ratio):
            break
        position = by_id[position_id]
        row = next(r for r in current.positions if r.id == position_id)
        keep = quantity_to_keep(
            position,
            row,
            current,
            mm_scale=account.credit_tier.mm_scale,
            target_ratio=target_ratio,
            slippage=slippage,
        )
        keep = (keep / quantity_step).to_integral_value(rounding=ROUND_FLOOR) * quantity_step
        reduced = position.quantity - keep
        reductions[position_id] = reduced
        current = quote_account(
            account_after(account, reductions, slippage=slippage, settlement_asset=settlement_asset)
        )
        steps.append(
            LiquidationStep(
                position_id=position_id,
                quantity=reduced,
                remaining_quantity=position.quantity - reduced,
                execution_price=execution_price(position, slippage),
                slippage_loss=reduced * position.mark_price * slippage,
                realized_pnl=realized_pnl(position, reduced, slippage),
                margin_ratio_after=current.margin_ratio,
            )
        )
    cross = [p for p in account.positions if not p.is_isolated]
    full_close_equity = quote.margin_balance - sum(
        (p.quantity * p.mark_price * slippage for p in cross), ZERO
    )
    return LiquidationPlan(
        target_ratio=target_ratio,
        slippage=slippage,
        margin_ratio_before=quote.margin_ratio,
        steps=tuple(steps),
        margin_ratio_after=current.margin_ratio,
        reaches_target=_under_target(current, target_ratio),
        bankruptcy_prices={
            row.id: row.bankruptcy_price for row in quote.positions if row.margin_mode != ISOLATED
        },
        equity_after_full_close=full_close_equity,
        insurance_fund_cost=max(ZERO, -full_close_equity),
    )


def apply_plan(
    account: AccountInput,
    plan: LiquidationPlan,
    *,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
) -> AccountInput:
    """The account after every step of the plan."""
    return account_after(
        account,
        {step.position_id: step.quantity for step in plan.steps},
        slippage=plan.slippage,
        settlement_asset=settlement_asset,
    )

"""Liquidation plan of an account's cross pool: what to reduce, in what order, how much.

The rule, after Binance's and Bybit's partial liquidation of cross positions (each step reduces
by the least quantity that brings the pool back under the target after its cost, which lowers
the bracket as the notional falls), made hedge-aware as OKX does it:
1. the net exposure per underlying goes first: only legs on the net side of their underlying
   are reduced, never by more than the net (a hedge is never turned into a naked position),
   the leg that frees the most margin per unit of cost (highest MM ÷ notional) first;
2. then offsetting legs of one underlying are closed together, an equal quantity of each side,
   the least that reaches the target.
A reduction trades at the mark moved against the account by `slippage` (the caller counts the
liquidation fee in it: both cost quantity × mark × rate), so a long sells at
mark × (1 − slippage) and a short buys at mark × (1 + slippage); the realized PnL settles into
the account as cash. When the cost per unit exceeds the margin a unit frees (cost > mmr), no
reduction helps and the plan does not reach the target: the caller takes the pool over.
Isolated positions stand alone and are not part of it.
An account holding options is planned in Deribit's order by `margin.engine.book_liquidation`
(futures first under the standard scheme, the largest contributor first under the portfolio
one), which ends with this plan when its own steps are not enough; the pool's ratio here is
`requirement_ratio` (the grid's MM, floored by the tiered MM, for an account holding options).
Before it, a position in a high risk tier is first cut to the top of the next lower tier when
that alone brings the pool back under the liquidation line (`lower_tier_plan`, Bybit's
process); the caller tries that first and falls back to this plan.
"""

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from margin.engine.errors import EngineInputError
from margin.engine.precision import exact
from margin.engine.reference import (
    AccountQuote,
    PositionQuote,
    margin_ratio,
    position_owner_quantity,
    quote_account,
)
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
    ratio = requirement_ratio(quote)
    return ratio is not None and ratio <= target_ratio


def net_exposure(account: AccountInput) -> dict[str, Decimal]:
    """Signed quantity of the underlying held through cross positions, per underlying
    (linear contracts: quantity is in the underlying)."""
    net: dict[str, Decimal] = {}
    for p in account.positions:
        if not p.is_isolated:
            net[p.risk_asset] = net.get(p.risk_asset, ZERO) + p.side * p.quantity
    return net


def _frees_most_first(row: PositionQuote) -> tuple:
    """MM freed per unit of cost (cost ∝ notional), then the larger MM, the worse uPnL, id."""
    per_notional = row.maintenance_margin / row.notional if row.notional else ZERO
    return (-per_notional, -row.maintenance_margin, row.unrealized_pnl, row.id)


def _net_side_order(
    account: AccountInput, quote: AccountQuote, frozen: frozenset[str]
) -> list[str]:
    """The cross legs on the net side of their underlying, the most margin freed per cost
    first (none of the `frozen` ones)."""
    net = net_exposure(account)
    sides = {p.id: (p.side, p.risk_asset) for p in account.positions}
    rows = [
        row
        for row in quote.positions
        if row.margin_mode != ISOLATED
        and row.id not in frozen
        and sides[row.id][0] * net[sides[row.id][1]] > 0
    ]
    return [row.id for row in sorted(rows, key=_frees_most_first)]


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

    When the owner holds O more of the instrument in other accounts, the bracket is that of the
    owner's (q′ + O)·x and the position carries cum_k × q′ / (q′ + O) of it
    (`reference.maintenance_margin`): MM is still the upper envelope of the lines (the owner's
    envelope times a positive share), and h_k(q′) = a_k·q′ + b_k − m·cum_k·q′ / (q′ + O) is
    convex, so each bracket keeps q′ in an interval, the roots of the quadratic
    (a_k·q′ + b_k)·(q′ + O) − m·cum_k·q′.
    """
    mark, quantity = position.mark_price, position.quantity
    others = position_owner_quantity(position) - quantity
    other = quote.maintenance_margin - row.maintenance_margin
    upper, lower = quantity, ZERO
    for bracket in position.brackets.brackets:
        slope = mark * (mm_scale * bracket.mmr - target_ratio * slippage)
        offset = (
            other - target_ratio * quote.margin_balance + target_ratio * quantity * mark * slippage
        )
        cum = mm_scale * bracket.cum
        if others == 0:
            interval = _line_at_or_below_zero(slope, offset - cum)
        else:
            interval = _quadratic_at_or_below_zero(
                slope, slope * others + offset - cum, offset * others
            )
        if interval is None:
            return ZERO
        lower, upper = max(lower, interval[0]), min(upper, interval[1])
    return upper if lower <= upper else ZERO


EVERYWHERE = (Decimal("-Infinity"), Decimal("Infinity"))


def _line_at_or_below_zero(slope: Decimal, offset: Decimal) -> tuple[Decimal, Decimal] | None:
    """Where slope·q + offset ≤ 0, as (lowest, highest) q; None when nowhere."""
    if slope > 0:
        return EVERYWHERE[0], -offset / slope
    if slope < 0:
        return -offset / slope, EVERYWHERE[1]
    return None if offset > 0 else EVERYWHERE


def _quadratic_at_or_below_zero(
    a: Decimal, b: Decimal, c: Decimal
) -> tuple[Decimal, Decimal] | None:
    """Where a·q² + b·q + c ≤ 0 on the side of −O where the bracket's h_k lives (its sign
    there; `quantity_to_keep`): between the roots when a > 0, from the larger root up when
    a < 0 (the smaller one lies at or below −O, where the quadratic is ≥ 0); None when nowhere."""
    if a == 0:
        return _line_at_or_below_zero(b, c)
    discriminant = b * b - 4 * a * c
    if discriminant < 0:
        return None if a > 0 else EVERYWHERE
    root = discriminant.sqrt()
    small, large = sorted(((-b - root) / (2 * a), (-b + root) / (2 * a)))
    return (small, large) if a > 0 else (large, EVERYWHERE[1])


def reduced_position(position: PositionInput, reduced: Decimal) -> PositionInput:
    """The position less `reduced`: what its owner holds over all their accounts shrinks by as
    much (the owner's bracket and the liquidity add-on follow the cut)."""
    owner_quantity = position.owner_quantity
    return replace(
        position,
        quantity=position.quantity - reduced,
        owner_quantity=None if owner_quantity is None else owner_quantity - reduced,
    )


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
            positions.append(reduced_position(position, reduced))
    # The account's options, settlement coin and scheme stay as they are: the cash line counts
    # at the settlement coin's own price, 1:1 in the pool.
    settlement = CollateralLine(
        asset=settlement_asset, quantity=realized, price=account.settlement_price
    )
    return replace(
        account,
        collateral=(*account.collateral, settlement) if reductions else account.collateral,
        positions=tuple(positions),
    )


def _check_inputs(
    ratio_name: str, ratio: Decimal, slippage: Decimal, step: Decimal, cost_name: str = "slippage"
) -> None:
    if not 0 < ratio <= 1:
        raise EngineInputError(ratio_name, f"must lie in (0, 1], got {ratio}")
    if not 0 <= slippage < 1:
        raise EngineInputError(cost_name, f"must lie in [0, 1), got {slippage}")
    if step <= 0:
        raise EngineInputError("quantity_step", f"must be positive, got {step}")


@exact
def liquidation_plan(
    account: AccountInput,
    *,
    target_ratio: Decimal,
    slippage: Decimal,
    quantity_step: Decimal = DEFAULT_QUANTITY_STEP,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
    frozen: frozenset[str] = frozenset(),
) -> LiquidationPlan:
    """The reductions that take the cross margin ratio to `target_ratio` or under (nothing when
    it already is), solved exactly one position at a time; the cross positions' bankruptcy
    prices; the insurance fund's cost should the pool be closed whole. `frozen` positions
    (priced on a stale mark) count in the pool but are never traded."""
    _check_inputs("target_ratio", target_ratio, slippage, quantity_step)
    quote = quote_account(account)
    by_id = {position.id: position for position in account.positions}
    planner = _Planner(account, slippage, settlement_asset, quantity_step, quote, frozen)
    net = net_exposure(account)
    for position_id in _net_side_order(account, quote, frozen):
        if _under_target(planner.current, target_ratio):
            break
        position = by_id[position_id]
        held = position.quantity - planner.reductions.get(position_id, ZERO)
        row = next(r for r in planner.current.positions if r.id == position_id)
        live = reduced_position(position, position.quantity - held)
        keep = quantity_to_keep(
            live,
            row,
            planner.current,
            mm_scale=account.credit_tier.mm_scale,
            target_ratio=target_ratio,
            slippage=slippage,
        )
        keep = (keep / quantity_step).to_integral_value(rounding=ROUND_FLOOR) * quantity_step
        # Never past the net: the rest of the leg is hedged by the other side.
        keep = max(keep, held - abs(net[position.risk_asset]))
        reduced = held - keep
        if reduced <= 0:
            continue
        net[position.risk_asset] -= position.side * reduced
        planner.reduce({position_id: reduced})
    for underlying in _hedged_underlyings(account, planner):
        if _under_target(planner.current, target_ratio):
            break
        planner.reduce_pairs(underlying, target_ratio)
    return _plan_of(planner, target_ratio)


@exact
def lower_tier_plan(
    account: AccountInput,
    *,
    threshold: Decimal,
    slippage: Decimal,
    quantity_step: Decimal = DEFAULT_QUANTITY_STEP,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
    frozen: frozenset[str] = frozenset(),
) -> LiquidationPlan | None:
    """The first partial step of a position in a high risk tier, as Bybit's liquidation process
    publishes it ("Liquidation Process (USDT Contract)", help.bybit.com article 900000167723:
    traders under the second or a higher margin tier get a FillOrKill order for the difference
    between the position value and the lower tier's value that satisfies the margin
    requirement; only if the position is still in liquidation is it taken over; the lowest
    tier is taken over at once. Binance reduces by brackets alike). A fixed step of the
    venue's process, not a parameter either venue publishes.

    The legs on the net side of their underlying, in the plan's order, each in its second
    bracket or above: the first whose owner's notional cut to just under its bracket's floor
    (the top of the next lower bracket; the owner's other accounts as they are, so a leg the
    owner also holds elsewhere may not get there alone; never past the net) brings the cross
    margin ratio to `threshold` or under after the cost is the plan, one step. None when no
    leg's does (the caller falls back to `liquidation_plan`)."""
    _check_inputs("threshold", threshold, slippage, quantity_step)
    quote = quote_account(account)
    by_id = {position.id: position for position in account.positions}
    rows = {row.id: row for row in quote.positions}
    net = net_exposure(account)
    for position_id in _net_side_order(account, quote, frozen):
        position, row = by_id[position_id], rows[position_id]
        if row.bracket < 2 or not position.mark_price:
            continue
        floor = position.brackets.brackets[row.bracket - 1].floor
        others = position_owner_quantity(position) - position.quantity
        keep = ((floor / position.mark_price - others) / quantity_step).to_integral_value(
            rounding=ROUND_FLOOR
        ) * quantity_step
        if (keep + others) * position.mark_price >= floor:  # a floor belongs to the upper bracket
            keep -= quantity_step
        keep = max(keep, position.quantity - abs(net[position.risk_asset]), ZERO)
        if not 0 < keep < position.quantity:
            continue
        cut = {position_id: position.quantity - keep}
        planner = _Planner(account, slippage, settlement_asset, quantity_step, quote, frozen)
        if _under_target(planner.quote_with(cut), threshold):
            planner.reduce(cut)
            return _plan_of(planner, threshold)
    return None


def _plan_of(planner: "_Planner", target_ratio: Decimal) -> LiquidationPlan:
    """The plan of the planner's steps, with what closing the whole pool would cost."""
    account, slippage, quote = planner.account, planner.slippage, planner.opening
    current = planner.current
    cross = [p for p in account.positions if not p.is_isolated]
    full_close_equity = quote.margin_balance - sum(
        (p.quantity * p.mark_price * slippage for p in cross), ZERO
    )
    return LiquidationPlan(
        target_ratio=target_ratio,
        slippage=slippage,
        margin_ratio_before=requirement_ratio(quote),
        steps=tuple(planner.steps),
        margin_ratio_after=requirement_ratio(current),
        reaches_target=_under_target(current, target_ratio),
        bankruptcy_prices={
            row.id: row.bankruptcy_price for row in quote.positions if row.margin_mode != ISOLATED
        },
        equity_after_full_close=full_close_equity,
        insurance_fund_cost=max(ZERO, -full_close_equity),
    )


class _Planner:
    """The reductions so far and the account's quote after them."""

    def __init__(self, account, slippage, settlement_asset, quantity_step, quote, frozen):
        self.account, self.slippage, self.settlement = account, slippage, settlement_asset
        self.frozen = frozen
        self.step_size = quantity_step
        self.by_id = {p.id: p for p in account.positions}
        self.reductions: dict[str, Decimal] = {}
        self.steps: list[LiquidationStep] = []
        self.current = self.opening = quote

    def held(self, position_id: str) -> Decimal:
        return self.by_id[position_id].quantity - self.reductions.get(position_id, ZERO)

    def quote_with(self, more: dict[str, Decimal]) -> AccountQuote:
        total = dict(self.reductions)
        for position_id, quantity in more.items():
            total[position_id] = total.get(position_id, ZERO) + quantity
        return quote_account(
            account_after(
                self.account, total, slippage=self.slippage, settlement_asset=self.settlement
            )
        )

    def reduce(self, more: dict[str, Decimal]) -> None:
        self.current = self.quote_with(more)
        for position_id, quantity in more.items():
            position = self.by_id[position_id]
            self.reductions[position_id] = self.reductions.get(position_id, ZERO) + quantity
            self.steps.append(
                LiquidationStep(
                    position_id=position_id,
                    quantity=quantity,
                    remaining_quantity=self.held(position_id),
                    execution_price=execution_price(position, self.slippage),
                    slippage_loss=quantity * position.mark_price * self.slippage,
                    realized_pnl=realized_pnl(position, quantity, self.slippage),
                    margin_ratio_after=requirement_ratio(self.current),
                )
            )

    def _pair_cut(self, underlying: str, quantity: Decimal) -> dict[str, Decimal]:
        """`quantity` of the underlying taken off each side, spread over that side's legs in
        the order that frees the most margin per cost."""
        rows = {r.id: r for r in self.current.positions}
        cut: dict[str, Decimal] = {}
        for side in (1, -1):
            legs = [
                p.id
                for p in self.account.positions
                if not p.is_isolated
                and p.id not in self.frozen
                and p.risk_asset == underlying
                and p.side == side
                and self.held(p.id) > 0
            ]
            left = quantity
            for position_id in sorted(legs, key=lambda i: _frees_most_first(rows[i])):
                take = min(left, self.held(position_id))
                if take > 0:
                    cut[position_id] = take
                left -= take
        return cut

    def hedged(self, underlying: str) -> Decimal:
        totals = {1: ZERO, -1: ZERO}
        for p in self.account.positions:
            if not p.is_isolated and p.id not in self.frozen and p.risk_asset == underlying:
                totals[p.side] += self.held(p.id)
        return min(totals.values())

    def reduce_pairs(self, underlying: str, target_ratio: Decimal) -> None:
        """Close offsetting legs together: the least equal quantity of both sides (a multiple
        of the lot, found by bisection) that reaches the target, or all of the hedge."""
        hedge = self.hedged(underlying)
        lots = int(hedge / self.step_size)
        if lots <= 0:
            return
        if not _under_target(self.quote_with(self._pair_cut(underlying, hedge)), target_ratio):
            self.reduce(self._pair_cut(underlying, hedge))
            return
        low, high = 0, lots  # high reaches the target, low does not
        for _ in range(64):
            if high - low <= 1:
                break
            middle = (low + high) // 2
            cut = self._pair_cut(underlying, middle * self.step_size)
            if _under_target(self.quote_with(cut), target_ratio):
                high = middle
            else:
                low = middle
        quantity = hedge if high == lots else high * self.step_size
        self.reduce(self._pair_cut(underlying, quantity))


def _hedged_underlyings(account: AccountInput, planner: _Planner) -> list[str]:
    """Underlyings held on both sides in the cross pool, the largest hedge first."""
    names = sorted({p.risk_asset for p in account.positions if not p.is_isolated})
    hedged = [(planner.hedged(name), name) for name in names]
    return [name for size, name in sorted(hedged, key=lambda pair: (-pair[0], pair[1])) if size > 0]


@exact
def stale_is_material(
    stale_value: Decimal,
    *,
    maintenance_margin: Decimal,
    margin_balance: Decimal,
    share: Decimal,
) -> bool:
    """Whether the part of an account valued on stale prices may hold its liquidation back:
    it is material when it reaches `share` of the larger of its maintenance margin and its
    margin balance (in absolute value). Binance and Bybit liquidate on the mark of each
    position; a dust holding on a frozen feed must not make a bankrupt account immune, while a
    position whose own price is unknown must not be traded blind."""
    base = max(maintenance_margin, abs(margin_balance))
    return stale_value > 0 and stale_value >= share * base


def apply_plan(
    account: AccountInput,
    plan: LiquidationPlan,
    *,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
) -> AccountInput:
    """The account after every step of the plan (a leg may be reduced in more than one)."""
    reductions: dict[str, Decimal] = {}
    for step in plan.steps:
        reductions[step.position_id] = reductions.get(step.position_id, ZERO) + step.quantity
    return account_after(
        account,
        reductions,
        slippage=plan.slippage,
        settlement_asset=settlement_asset,
    )


# Options: what closing them does to the account (the plan is `margin.engine.book_liquidation`).


def requirement(quote: AccountQuote) -> Decimal:
    """The cross pool's requirement as the plans weigh it: its MM (the grid's, for an account
    holding options) with the linear positions' tiered MM as the grid's floor, as the
    account's requirement takes it (`margin.engine.scheme.maintenance_requirement`)."""
    return max(quote.maintenance_margin, quote.tiered_maintenance_margin or ZERO)


@exact
def requirement_ratio(quote: AccountQuote) -> Decimal | None:
    """`requirement` over the margin balance: a linear account's margin ratio."""
    return margin_ratio(requirement(quote), quote.margin_balance)


@exact
def options_closed(
    account: AccountInput,
    closes: dict[str, Decimal],
    *,
    marks: dict[str, Decimal],
    fee_rate: Decimal,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
) -> AccountInput:
    """The account once each option id in `closes` is closed by that quantity at its mark (a
    short bought back, a long sold): what the position's value at the mark held (side ×
    quantity × (mark − entry)) becomes cash, less the fee quantity × mark × `fee_rate`, one
    cash line in the settlement coin. At the mark the close moves no value: only the fee
    costs."""
    cash = ZERO
    options = []
    for option in account.options:
        closed = closes.get(option.id, ZERO)
        mark = marks[option.id]
        cash += option.side * closed * (mark - option.entry_price) - closed * mark * fee_rate
        if closed < option.quantity:
            options.append(replace(option, quantity=option.quantity - closed))
    line = CollateralLine(asset=settlement_asset, quantity=cash, price=account.settlement_price)
    return replace(
        account,
        collateral=(*account.collateral, line) if closes else account.collateral,
        options=tuple(options),
    )

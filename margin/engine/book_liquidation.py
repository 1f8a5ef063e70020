"""The cross pool's liquidation plan, options included, in the order Deribit publishes.

Standard margin, Deribit "Auto liquidation" (deribit.com/docs/auto-liquidation/): "The system
would first liquidate future positions and after that liquidate any option positions, in such
a way that the risk of the position will be reduced (basically striving for a 'delta neutral'
position where possible). There are circumstances possible where options would get liquidated
first, where options delta's are bigger and opposite direction than all other delta's."
So futures and perpetuals are reduced first (the linear plan's order: the net side of each
underlying, never past the net), options after; the options go first when, on an underlying,
their delta is larger than the linear positions' and of the opposite sign (`options_lead`).
A linear account keeps Bybit's first step (`lower_tier_plan`) before the linear plan.

Portfolio margin, Deribit support "1 August 2023" (support.deribit.com/hc/en-us/articles/
25944825289245): "look at the risk matrix to find which instrument is contributing the most to
the overall margin requirements and liquidate that instrument ... If the attempted liquidation
order does not trade ... move to the next highest contributing instrument ... If attempts on
the relevant instruments do not execute, then Deribit will attempt to reduce the risk by delta
hedging via the Perpetual (if this would also reduce the maintenance margin)"; and
"Liquidations" (article 25944769313309): portfolio-margin accounts "can have futures positions
traded to hedge the deltas". So each round takes the instrument whose close frees the most
requirement (the requirement with it less without it, on the grid), recomputed after every
close; an instrument on a stale price does not trade and the next one is taken; when the
closes do not reach the line, the perpetual of an underlying hedges its net delta if that
lowers the requirement.

Every step trades the least multiple of the lot that brings the requirement ratio
(`requirement_ratio`: the grid's MM with the linear positions' tiered MM as its floor, over the
margin balance) to the target, or all it may when that is not enough; an instrument whose
close would not lower the requirement is kept (a long option, a leg that hedges the book).
Options close at their mark, the fee their cost; linear legs and the hedge trade at the mark
moved against the account by `slippage` (the caller counts the liquidation fee in it).
"""

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from margin.engine.liquidation import (
    DEFAULT_QUANTITY_STEP,
    DEFAULT_SETTLEMENT_ASSET,
    LiquidationPlan,
    _check_inputs,
    _net_side_order,
    account_after,
    apply_plan,
    execution_price,
    liquidation_plan,
    lower_tier_plan,
    net_exposure,
    options_closed,
    requirement,
    requirement_ratio,
)
from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, quote_account
from margin.engine.scheme import STRESS, Requirement
from margin.engine.types import PORTFOLIO, ZERO, AccountInput, PositionInput

FUTURE, OPTION, HEDGE = "future", "option", "hedge"
# A linear leg cut to the top of its lower risk tier (Bybit's first step): traded as a future.
LOWER_TIER = "lower tier"
FUTURES_FIRST = "futures first, then options"
OPTIONS_FIRST = "options first: their delta is larger than and opposite to the futures'"
LARGEST_CONTRIBUTION_FIRST = "the instrument contributing most to the requirement first"


@dataclass(frozen=True)
class BookStep:
    """One trade of the plan. `side` is the side of the position traded (a hedge: of the leg
    it opens or adds to); `price` what it fills at (an option's mark, a linear leg's mark moved
    against the account); `cost` the fee (options) or the slippage loss with the fee (linear
    legs and the hedge); `remaining_quantity` the position's size after it."""

    kind: str
    position_id: str
    side: int
    quantity: Decimal
    remaining_quantity: Decimal
    price: Decimal
    cost: Decimal
    margin_ratio_after: Decimal | None


@dataclass(frozen=True)
class CrossPlan:
    """The cross pool's plan: its steps in order and where they lead. `reaches_target` False
    means the caller takes the pool over (no partial step brings it back under the line);
    `insurance_fund_cost` is the deficit closing the whole pool would leave."""

    order: str
    lower_tier: bool
    line: Decimal
    target_ratio: Decimal
    slippage: Decimal
    fee_rate: Decimal
    margin_ratio_before: Decimal | None
    steps: tuple[BookStep, ...]
    margin_ratio_after: Decimal | None
    reaches_target: bool
    insurance_fund_cost: Decimal


def scaled_target(target: Decimal, account_requirement: Requirement) -> Decimal:
    """The requirement ratio (`requirement_ratio`: tiered MM, and the grid's for an account
    holding options) the plans aim at so that the account's requirement lands on `target`: the
    target itself unless the portfolio scheme's stress loss binds; then scaled by that ratio's
    requirement ÷ the account's. The stress loss shrinks with the exposures a plan closes much
    as the other terms do (a linear book's k·√(eᵀΣe) is proportional to a uniform cut), so this
    lands near the target, not on it; an account still past the line is found again by the
    next tick. The linear and the option steps stop at the same line."""
    r = account_requirement
    if r.binding != STRESS or r.maintenance <= 0:
        return target
    planned = max(r.tiered_maintenance, r.grid_maintenance or ZERO)
    return target * planned / r.maintenance


def options_lead(account: AccountInput, quote: AccountQuote) -> bool:
    """Deribit's exception to futures first: on some underlying the options' delta (Σ side ×
    quantity × Black-76 delta) is larger than the cross linear positions' net quantity and of
    the opposite sign, so that closing futures first would move the book away from neutral."""
    linear = net_exposure(account)
    options: dict[str, Decimal] = {}
    for row in quote.options:
        options[row.underlying] = options.get(row.underlying, ZERO) + row.position_delta
    return any(
        delta * linear.get(name, ZERO) < 0 and abs(delta) > abs(linear[name])
        for name, delta in options.items()
    )


class _Book:
    """The trades so far ((kind, id) → quantity; a hedge is keyed by its underlying) and the
    account after them."""

    def __init__(
        self,
        account: AccountInput,
        *,
        target_ratio: Decimal,
        slippage: Decimal,
        fee_rate: Decimal,
        marks: dict[str, Decimal],
        settlement_asset: str,
        quantity_step: Decimal,
        frozen: frozenset[str],
        perpetuals: dict[str, PositionInput],
    ):
        self.account, self.target = account, target_ratio
        self.slippage, self.fee_rate, self.marks = slippage, fee_rate, marks
        self.settlement, self.lot, self.frozen = settlement_asset, quantity_step, frozen
        self.perpetuals = perpetuals
        self.linear = {p.id: p for p in account.positions}
        self.options = {o.id: o for o in account.options}
        self.trades: dict[tuple[str, str], Decimal] = {}
        self.steps: list[BookStep] = []
        self.opening = self.current = quote_account(account)
        self._hedge_sides: dict[str, int] = {}

    def after(self, more: dict[tuple[str, str], Decimal] | None = None) -> AccountInput:
        trades = dict(self.trades)
        for key, quantity in (more or {}).items():
            trades[key] = trades.get(key, ZERO) + quantity
        of = {
            kind: {i: q for (k, i), q in trades.items() if k == kind and q}
            for kind in (FUTURE, OPTION, HEDGE)
        }
        account = self.account
        if of[OPTION]:
            account = options_closed(
                account,
                of[OPTION],
                marks=self.marks,
                fee_rate=self.fee_rate,
                settlement_asset=self.settlement,
            )
        if of[FUTURE]:
            account = account_after(
                account, of[FUTURE], slippage=self.slippage, settlement_asset=self.settlement
            )
        for underlying, quantity in of[HEDGE].items():
            account = self._hedged(account, underlying, quantity)
        return account

    def _hedged(self, account: AccountInput, underlying: str, quantity: Decimal) -> AccountInput:
        """The account with `quantity` of the underlying's perpetual bought or sold against its
        net delta at the mark moved against it: a new leg, or added to the one it holds."""
        perpetual = self.perpetuals[underlying]
        side = self.hedge_side(underlying)
        price = perpetual.mark_price * (1 + side * self.slippage)
        held = next((p for p in account.positions if p.id == perpetual.id), None)
        if held is None:
            leg = replace(perpetual, side=side, quantity=quantity, entry_price=price)
            return replace(account, positions=(*account.positions, leg))
        size = held.quantity + quantity
        # What the owner holds over all their accounts grows with the leg (it picks the bracket).
        owner_quantity = None if held.owner_quantity is None else held.owner_quantity + quantity
        leg = replace(
            held,
            quantity=size,
            entry_price=(held.quantity * held.entry_price + quantity * price) / size,
            owner_quantity=owner_quantity,
        )
        return replace(
            account, positions=tuple(leg if p.id == held.id else p for p in account.positions)
        )

    def quote(self, more: dict[tuple[str, str], Decimal]) -> AccountQuote:
        return quote_account(self.after(more))

    def reached(self, quote: AccountQuote | None = None) -> bool:
        ratio = requirement_ratio(quote or self.current)
        return ratio is not None and ratio <= self.target

    def frees(self, key: tuple[str, str], quantity: Decimal) -> Decimal:
        """The requirement trading `quantity` of `key` frees (negative: it adds)."""
        return requirement(self.current) - requirement(self.quote({key: quantity}))

    def held(self, kind: str, position_id: str) -> Decimal:
        start = (self.linear if kind == FUTURE else self.options)[position_id].quantity
        return start - self.trades.get((kind, position_id), ZERO)

    def take(self, key: tuple[str, str], most: Decimal) -> None:
        """Trade the least multiple of the lot up to `most` that reaches the target, all of
        `most` when that does not."""
        quantity = most
        if self.reached(self.quote({key: most})):
            lots = int(most / self.lot)
            low, high = 0, lots  # high reaches the target, low does not
            while high - low > 1:
                middle = (low + high) // 2
                if self.reached(self.quote({key: middle * self.lot})):
                    high = middle
                else:
                    low = middle
            quantity = most if high == lots else high * self.lot
        self.record(key, quantity)

    def record(self, key: tuple[str, str], quantity: Decimal, label: str | None = None) -> None:
        """Book the trade: the account and the steps follow it (`label` names the step's kind
        where it is not the trade's own)."""
        self.trades[key] = self.trades.get(key, ZERO) + quantity
        self.current = self.quote({})
        step = self._step(key, quantity)
        self.steps.append(step if label is None else replace(step, kind=label))

    def _step(self, key: tuple[str, str], quantity: Decimal) -> BookStep:
        kind, position_id = key
        ratio = requirement_ratio(self.current)
        if kind == OPTION:
            option, mark = self.options[position_id], self.marks[position_id]
            return BookStep(
                kind,
                position_id,
                option.side,
                quantity,
                self.held(kind, position_id),
                mark,
                quantity * mark * self.fee_rate,
                ratio,
            )
        if kind == FUTURE:
            position = self.linear[position_id]
            return BookStep(
                kind,
                position_id,
                position.side,
                quantity,
                self.held(kind, position_id),
                execution_price(position, self.slippage),
                quantity * position.mark_price * self.slippage,
                ratio,
            )
        perpetual, side = self.perpetuals[position_id], self.hedge_side(position_id)
        leg = next(p for p in self.after().positions if p.id == perpetual.id)
        return BookStep(
            kind,
            perpetual.id,
            side,
            quantity,
            leg.quantity,
            perpetual.mark_price * (1 + side * self.slippage),
            quantity * perpetual.mark_price * self.slippage,
            ratio,
        )

    def net_delta(self, underlying: str) -> Decimal:
        """The underlying's delta in the pool now: its options' and its cross linear legs'."""
        account = self.after()
        options = sum(
            (row.position_delta for row in self.current.options if row.underlying == underlying),
            ZERO,
        )
        return options + net_exposure(account).get(underlying, ZERO)

    def hedge_side(self, underlying: str) -> int:
        """The side a hedge trades, fixed by the first one: against the net delta."""
        if underlying not in self._hedge_sides:
            self._hedge_sides[underlying] = -1 if self.net_delta(underlying) > 0 else 1
        return self._hedge_sides[underlying]


def _lower_tier(book: _Book) -> None:
    """Bybit's first step (`lower_tier_plan`): a leg in a high risk tier cut to the top of the
    lower tier, when that alone brings the pool back under the line."""
    tier = lower_tier_plan(
        book.account,
        threshold=book.target,
        slippage=book.slippage,
        quantity_step=book.lot,
        settlement_asset=book.settlement,
        frozen=book.frozen,
    )
    for step in tier.steps if tier is not None else ():
        book.record((FUTURE, step.position_id), step.quantity, LOWER_TIER)


def _futures(book: _Book) -> None:
    """The linear legs on the side of their underlying's net delta (the options' included:
    "striving for a delta neutral position"), the most margin freed per cost first, each by
    no more than that delta; a leg whose reduction frees nothing is kept."""
    for position_id in _net_side_order(book.after(), book.current, book.frozen):
        if book.reached():
            return
        position = book.linear[position_id]
        delta = book.net_delta(position.risk_asset)
        key = (FUTURE, position_id)
        most = min(book.held(FUTURE, position_id), abs(delta)) if position.side * delta > 0 else 0
        most = (most / book.lot).to_integral_value(rounding=ROUND_FLOOR) * book.lot
        if most > 0 and book.frees(key, most) > 0:
            book.take(key, most)


def _options(book: _Book) -> None:
    """The options, the one that frees the most requirement per unit of fee when closed whole
    first (one that costs nothing before any that costs, by what it frees)."""

    def ranked(option_id: str) -> tuple:
        held = book.held(OPTION, option_id)
        cost = held * book.marks[option_id] * book.fee_rate
        gain = book.frees((OPTION, option_id), held)
        return (0, -gain, option_id) if cost <= 0 else (1, -gain / cost, option_id)

    candidates = [
        i
        for i in book.options
        if i not in book.frozen and book.frees((OPTION, i), book.held(OPTION, i)) > 0
    ]
    for option_id in sorted(candidates, key=ranked):
        if book.reached():
            return
        book.take((OPTION, option_id), book.held(OPTION, option_id))


def _largest_contribution(book: _Book) -> None:
    """Round after round, the tradeable instrument whose whole close frees the most
    requirement; none left that frees any ends the rounds."""
    while not book.reached():
        held = [(FUTURE, i) for i, p in book.linear.items() if not p.is_isolated] + [
            (OPTION, i) for i in book.options
        ]
        best = None
        for key in held:
            quantity = book.held(*key)
            if key[1] in book.frozen or quantity <= 0:
                continue
            contribution = book.frees(key, quantity)
            if contribution > 0 and (best is None or (contribution, key) > best[:2]):
                best = (contribution, key, quantity)
        if best is None:
            return
        book.take(best[1], best[2])


def _delta_hedge(book: _Book) -> None:
    """Each underlying with options, the largest net delta in value first: its perpetual
    bought or sold against the net delta, if that lowers the requirement (never against a leg
    of the perpetual held the other way: that leg is a close the rounds above weighed)."""

    def value(name: str) -> Decimal:
        return abs(book.net_delta(name)) * book.perpetuals[name].mark_price

    names = sorted({o.underlying for o in book.options.values()} & set(book.perpetuals))
    for name in sorted(names, key=lambda n: (-value(n), n)):
        if book.reached():
            return
        perpetual, side = book.perpetuals[name], book.hedge_side(name)
        held = next((p for p in book.after().positions if p.id == perpetual.id), None)
        if (held is not None and held.side != side) or perpetual.id in book.frozen:
            continue
        quantity = abs(book.net_delta(name))
        quantity = (quantity / book.lot).to_integral_value(rounding=ROUND_FLOOR) * book.lot
        if quantity > 0 and book.frees((HEDGE, name), quantity) > 0:
            book.take((HEDGE, name), quantity)


def _linear_plan(
    account: AccountInput,
    *,
    line: Decimal,
    target_ratio: Decimal,
    slippage: Decimal,
    quantity_step: Decimal,
    settlement_asset: str,
    frozen: frozenset[str],
    lower_tier: bool,
) -> tuple[LiquidationPlan | None, bool]:
    """The linear partial plan and whether it is the lower-tier step: first a position in a
    high risk tier cut to the lower tier when that brings the pool back under the line
    (`lower_tier_plan`, Bybit's process), else the hedge-aware plan that reaches the target
    ratio, else the line, keeping a position open; None when none can (a take-over)."""
    options = dict(
        slippage=slippage,
        quantity_step=quantity_step,
        settlement_asset=settlement_asset,
        frozen=frozen,
    )
    if lower_tier and 0 < line <= 1:
        tier = lower_tier_plan(account, threshold=line, **options)
        if tier is not None:
            return tier, True
    for target in sorted({t for t in (target_ratio, line) if 0 < t <= 1}):
        plan = liquidation_plan(account, target_ratio=target, **options)
        reduced: dict[str, Decimal] = {}
        for step in plan.steps:
            reduced[step.position_id] = reduced.get(step.position_id, ZERO) + step.quantity
        keeps_one = any(
            p.quantity > reduced.get(p.id, ZERO)
            for p in account.positions
            if not p.is_isolated and p.id not in frozen
        )
        if plan.reaches_target and keeps_one:
            return plan, False
    return None, False


def _linear_steps(plan: LiquidationPlan, account: AccountInput, kind: str) -> list[BookStep]:
    sides = {p.id: p.side for p in account.positions}
    return [
        BookStep(
            kind,
            step.position_id,
            sides[step.position_id],
            step.quantity,
            step.remaining_quantity,
            step.execution_price,
            step.slippage_loss,
            step.margin_ratio_after,
        )
        for step in plan.steps
    ]


@exact
def cross_plan(
    account: AccountInput,
    *,
    scheme: str,
    line: Decimal,
    target_ratio: Decimal,
    slippage: Decimal,
    fee_rate: Decimal,
    quantity_step: Decimal = DEFAULT_QUANTITY_STEP,
    settlement_asset: str = DEFAULT_SETTLEMENT_ASSET,
    frozen: frozenset[str] = frozenset(),
    prices: dict[str, Decimal] | None = None,
    perpetuals: dict[str, PositionInput] | None = None,
) -> CrossPlan:
    """The cross pool's liquidation plan under the account's `scheme`, in the order of the
    module's doc: the steps toward the liquidation `line` (the ratio after hysteresis; the
    linear plan aims at `target_ratio` first, as before), both already in the terms of
    `requirement_ratio` (`scaled_target`). `slippage` is a linear leg's cost (the caller's
    slippage and fee), `fee_rate` an option close's; `prices` the options' published marks by
    id (their Black-76 value by default); `perpetuals` by underlying, the perpetual a
    portfolio account's delta hedge trades (its id the account's leg on it, or the id a new
    one takes; side and quantity ignored). `frozen` positions (on a stale price) never trade.
    An account without options is planned as before: the lower-tier step, else the linear
    plan."""
    _check_inputs("target_ratio", target_ratio, slippage, quantity_step)
    _check_inputs("target_ratio", target_ratio, fee_rate, quantity_step, "fee_rate")
    quote = quote_account(account)
    marks = {row.id: row.mark_price for row in quote.options} | (prices or {})
    before = requirement_ratio(quote)
    due = before is None or before > line
    steps: list[BookStep] = []
    rest, lower_tier, order, reaches = account, False, FUTURES_FIRST, not due
    if account.options and due:
        portfolio = scheme == PORTFOLIO
        lead = options_lead(account, quote)
        order = LARGEST_CONTRIBUTION_FIRST if portfolio else OPTIONS_FIRST if lead else order
        book = _Book(
            account,
            target_ratio=line,
            slippage=slippage,
            fee_rate=fee_rate,
            marks=marks,
            settlement_asset=settlement_asset,
            quantity_step=quantity_step,
            frozen=frozen,
            perpetuals=perpetuals or {},
        )
        if portfolio:
            phases = (_largest_contribution, _delta_hedge)
        else:
            # Futures first opens with Bybit's lower-tier cut, as a linear account's plan does.
            phases = (_options, _futures) if lead else (_lower_tier, _futures, _options)
        for phase in phases:
            phase(book)
        steps, rest, reaches = list(book.steps), book.after(), book.reached()
        lower_tier = any(step.kind == LOWER_TIER for step in steps)
    if not account.options or (due and not reaches):
        # A linear account as before (the lower-tier step only when past the line: the desk's
        # preview plans an account not yet due toward the target too); what the book's own
        # steps left past the line, by the hedge-aware linear plan.
        plan, tier = _linear_plan(
            rest,
            line=line,
            target_ratio=target_ratio,
            slippage=slippage,
            quantity_step=quantity_step,
            settlement_asset=settlement_asset,
            frozen=frozen,
            lower_tier=due and not account.options,
        )
        reaches = plan is not None
        if plan is not None:
            steps += _linear_steps(plan, rest, LOWER_TIER if tier else FUTURE)
            rest = apply_plan(rest, plan, settlement_asset=settlement_asset)
            lower_tier = lower_tier or tier
    cross = [p for p in account.positions if not p.is_isolated]
    full_close = (
        quote.margin_balance
        - sum((p.quantity * p.mark_price * slippage for p in cross), ZERO)
        - sum((o.quantity * marks[o.id] * fee_rate for o in account.options), ZERO)
    )
    return CrossPlan(
        order=order,
        lower_tier=lower_tier,
        line=line,
        target_ratio=target_ratio,
        slippage=slippage,
        fee_rate=fee_rate,
        margin_ratio_before=before,
        steps=tuple(steps),
        margin_ratio_after=requirement_ratio(quote_account(rest)),
        reaches_target=reaches,
        insurance_fund_cost=max(ZERO, -full_close),
    )

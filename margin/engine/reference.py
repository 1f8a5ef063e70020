"""The reference margin engine: Decimal, one account at a time, written to be read.

Every figure follows the definitions of the shared test vectors (vectors/README.md); each
function's docstring names the venue rule it follows. `margin.engine.vector` computes the same
figures in float64 for a whole book at once, and the tests hold the two equal.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import pairwise

from margin.engine.errors import EngineInputError
from margin.engine.liquidity import holding_liquidity_haircut, position_liquidity_addon
from margin.engine.options import OptionQuote, PortfolioMargin, option_quote, portfolio_margin
from margin.engine.precision import exact
from margin.engine.types import (
    CROSS,
    ONE,
    ZERO,
    AccountInput,
    Bracket,
    CollateralLine,
    MarginMode,
    PositionInput,
    derive_cum,
)

__all__ = [
    "AccountQuote",
    "CollateralSlice",
    "LinkedMove",
    "PositionQuote",
    "bankruptcy_price",
    "collateral_line_value",
    "collateral_slices",
    "collateral_value",
    "derive_cum",
    "effective_haircut_ratio",
    "equity_behind",
    "holding_value",
    "initial_margin",
    "linked_move",
    "linked_scale_root",
    "liquidation_distance",
    "liquidation_price",
    "liquidity_keep",
    "maintenance_margin",
    "margin_ratio",
    "notional",
    "owner_collateral_values",
    "owner_notional",
    "portfolio_quote",
    "position_owner_quantity",
    "position_owner_share",
    "quote_account",
    "unrealized_pnl",
    "withdrawable",
]


@dataclass(frozen=True)
class PositionQuote:
    id: str
    notional: Decimal
    bracket: int
    mmr: Decimal
    cum: Decimal
    max_leverage: Decimal
    maintenance_margin: Decimal
    initial_margin: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    margin_mode: MarginMode
    isolated_margin: Decimal | None
    isolated_margin_ratio: Decimal | None
    side: int
    liquidation_bracket: int | None
    liquidation_distance: Decimal | None
    # Part of maintenance_margin and initial_margin: the cost of closing against the market's
    # depth (`margin.engine.liquidity`).
    liquidity_addon: Decimal = ZERO
    # What the owner holds of the instrument over all their accounts at the mark, which picks
    # the bracket, and this position's share of it (`position_owner_share`); the notional and
    # 1 for a position its owner holds nowhere else.
    owner_notional: Decimal | None = None
    owner_share: Decimal = ONE


@dataclass(frozen=True)
class AccountQuote:
    """The cross pool's figures; isolated positions carry theirs on their own rows."""

    collateral_value: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal
    initial_margin: Decimal
    margin_ratio: Decimal | None
    withdrawable: Decimal
    positions: tuple[PositionQuote, ...]
    options: tuple[OptionQuote, ...] = ()
    portfolio: PortfolioMargin | None = None
    # Under the grid, the linear positions' tiered MM and IM the account figures replaced: the
    # margin schemes keep the tiered MM as a floor (`margin.engine.scheme`).
    tiered_maintenance_margin: Decimal | None = None
    tiered_initial_margin: Decimal | None = None


@dataclass(frozen=True)
class CollateralSlice:
    """The part of a holding's USD value between two tier floors, and the ratio it counts at."""

    floor: Decimal
    cap: Decimal | None
    amount: Decimal
    ratio: Decimal

    @property
    @exact
    def value(self) -> Decimal:
        return self.amount * self.ratio


@exact
def notional(quantity: Decimal, mark_price: Decimal) -> Decimal:
    """Binance USD-M position notional: |size| × mark price; it picks the leverage bracket."""
    return quantity * mark_price


@exact
def position_owner_quantity(position: PositionInput) -> Decimal:
    """What the position's owner holds of its instrument over all their accounts, long and
    short alike (`PositionInput.owner_quantity`; the position alone when not given)."""
    return position.owner_quantity or position.quantity


@exact
def position_owner_share(position: PositionInput) -> Decimal:
    """The part of what its owner holds of the instrument over all their accounts that this
    position is: quantity / owner quantity (1 when it is all the owner holds)."""
    if position.owner_quantity is None:
        return ONE
    return position.quantity / position.owner_quantity


@exact
def owner_notional(position: PositionInput, mark_price: Decimal | None = None) -> Decimal:
    """The owner's notional on the instrument at `mark_price` (default: the mark), which picks
    the bracket of each of their positions in it: the owner's other accounts held at their
    quantities."""
    price = position.mark_price if mark_price is None else mark_price
    return notional(position_owner_quantity(position), price)


@exact
def maintenance_margin(
    notional: Decimal, bracket: Bracket, mm_scale: Decimal = ONE, share: Decimal = ONE
) -> Decimal:
    """Binance USD-M maintenance margin: notional × mmr − cum (maintenance amount) of the
    bracket, times the account's credit-tier scale.

    Brackets are per owner here: the bracket is the one of the owner's notional on the
    instrument over all their accounts, and each position carries its `share` of the owner's
    requirement, share × (owner notional × mmr − cum) = notional × mmr − cum × share. Binance
    picks the bracket per symbol in each futures account ("Leverage and Margin of USDⓈ-M
    Futures", https://www.binance.com/en/support/faq/360033162192), so an owner splitting a
    position over sub-accounts stays in lower brackets; per owner, splitting gains nothing."""
    return (notional * bracket.mmr - bracket.cum * share) * mm_scale


@exact
def initial_margin(notional: Decimal, leverage: Decimal) -> Decimal:
    """Binance USD-M initial margin: notional / leverage."""
    return notional / leverage


@exact
def unrealized_pnl(
    side: int, quantity: Decimal, entry_price: Decimal, mark_price: Decimal
) -> Decimal:
    """Binance USD-M unrealized PnL on mark: side × size × (mark − entry), side +1 long,
    −1 short."""
    return side * quantity * (mark_price - entry_price)


@exact
def holding_value(line: CollateralLine) -> Decimal:
    """A holding's USD value at its price: quantity × price (negative for a liability)."""
    return line.quantity * line.price


@exact
def effective_haircut_ratio(ratio: Decimal, haircut_scale: Decimal) -> Decimal:
    """Credit tier on a collateral ratio: the haircut 1 − r is scaled, so r becomes
    max(0, 1 − haircut_scale × (1 − r))."""
    return max(ZERO, ONE - haircut_scale * (ONE - ratio))


@exact
def owner_share(line: CollateralLine) -> Decimal:
    """The part of what its owner holds of the asset over all their accounts that this holding
    is: quantity / owner_quantity (1 for a liability, or when it is all the owner holds)."""
    if line.owner_quantity is None or line.quantity <= 0:
        return ONE
    return line.quantity / line.owner_quantity


@exact
def collateral_slices(line: CollateralLine, haircut_scale: Decimal) -> tuple[CollateralSlice, ...]:
    """Bitget / Binance tiered collateral ratio: the holding's USD value cut at the tier floors,
    each slice counted at its own ratio (progressive, like income tax brackets). A holding
    without tiers counts in full; a liability (negative value) has no slices.

    The tiers apply to what the owner holds over all their accounts, and this holding takes its
    share of each slice: cutting the owner's value at the floors and taking the share is cutting
    this holding's value at the floors × the share, which is what is done here."""
    value = holding_value(line)
    tiers = line.haircut_tiers
    if value <= 0:
        return ()
    if not tiers:
        return (CollateralSlice(floor=ZERO, cap=None, amount=value, ratio=ONE),)
    share = owner_share(line)
    slices = []
    for n, tier in enumerate(tiers):
        floor = tier.floor * share
        if value <= floor:
            break
        cap = tiers[n + 1].floor * share if n + 1 < len(tiers) else None
        top = value if cap is None else min(value, cap)
        slices.append(
            CollateralSlice(
                floor=floor,
                cap=cap,
                amount=top - floor,
                ratio=effective_haircut_ratio(tier.ratio, haircut_scale),
            )
        )
    return tuple(slices)


@exact
def liquidity_keep(line: CollateralLine) -> Decimal:
    """What the liquidity haircut leaves of a holding's tiered value: 1 − the share of the
    owner's whole holding that selling it into the asset's market would cost (1 without a
    market depth, or for a liability)."""
    if line.liquidity is None or line.quantity <= 0:
        return ONE
    owner_value = (line.owner_quantity or line.quantity) * line.price
    return ONE - holding_liquidity_haircut(owner_value, line.liquidity)


@exact
def collateral_line_value(
    line: CollateralLine, haircut_scale: Decimal, *, keep: Decimal | None = None
) -> Decimal:
    """One holding's collateral value: Σ slice × ratio, times what the liquidity haircut keeps
    (`liquidity_keep`, or `keep` when the caller holds it at another price); a liability counts
    at its full (negative) value, since a debt is owed whole whatever the asset's haircut."""
    value = holding_value(line)
    if value < 0:
        return value
    tiered = sum((s.value for s in collateral_slices(line, haircut_scale)), ZERO)
    return tiered * (liquidity_keep(line) if keep is None else keep)


@exact
def owner_collateral_values(
    holdings: Sequence[CollateralLine], haircut_scale: Decimal = ONE
) -> list[Decimal]:
    """Each account's collateral value of one asset when the asset's haircut tiers apply to what
    the owner holds across all the accounts: the owner's total is tiered once and each account
    gets its share of it in proportion to its quantity. Liabilities stay whole in their own
    account and do not offset another account's holding."""
    if not holdings:
        return []
    first = holdings[0]
    for n, line in enumerate(holdings):
        if (line.asset, line.price, line.haircut_tiers) != (
            first.asset,
            first.price,
            first.haircut_tiers,
        ):
            raise EngineInputError(
                f"holdings[{n}]", "every holding must be of one asset at one price and tiering"
            )
    held = sum((line.quantity for line in holdings if line.quantity > 0), ZERO)
    if held == 0:
        return [line.quantity * line.price for line in holdings]
    return [
        collateral_line_value(replace(line, owner_quantity=held), haircut_scale)
        for line in holdings
    ]


@exact
def collateral_value(lines: Iterable[CollateralLine], haircut_scale: Decimal) -> Decimal:
    """Binance multi-assets mode wallet value: the sum of the holdings' collateral values."""
    return sum((collateral_line_value(line, haircut_scale) for line in lines), ZERO)


@exact
def margin_ratio(maintenance: Decimal, margin_balance: Decimal) -> Decimal | None:
    """Binance USD-M cross margin ratio: maintenance margin / margin balance, liquidation at ≥ 1;
    none when the balance is ≤ 0 (the account is past bankruptcy, a ratio means nothing)."""
    if margin_balance <= 0:
        return None
    return maintenance / margin_balance


@exact
def withdrawable(
    collateral_value: Decimal, unrealized_pnl: Decimal, initial_margin: Decimal
) -> Decimal:
    """Binance USD-M max withdraw amount: collateral + unrealized losses (gains are not
    withdrawable) − initial margin of open positions, never below 0."""
    return max(ZERO, collateral_value + min(ZERO, unrealized_pnl) - initial_margin)


@exact
def equity_behind(
    position: PositionInput,
    *,
    unrealized_pnl: Decimal,
    maintenance_margin: Decimal,
    margin_balance: Decimal,
    cross_maintenance: Decimal,
) -> tuple[Decimal, Decimal]:
    """What stands behind a position besides its own uPnL and MM, as (other equity, other
    requirement) for `liquidation_price` and `bankruptcy_price`: an isolated position has its
    isolated margin and answers for no other MM; a cross one has the pool's margin balance less
    its own uPnL and answers for the pool's MM less its own."""
    if position.is_isolated:
        return position.isolated_margin, ZERO
    return margin_balance - unrealized_pnl, cross_maintenance - maintenance_margin


def _price_meeting_maintenance(
    position: PositionInput,
    bracket: Bracket,
    *,
    other_equity: Decimal,
    other_requirement: Decimal,
    mm_scale: Decimal,
) -> Decimal:
    """Solve other_equity + s × q × (P − entry) = other_requirement + mm_scale × (q × P × mmr −
    cum × share) for P, with one bracket's mmr and cum and the position's owner share."""
    s, q = position.side, position.quantity
    cum = bracket.cum * position_owner_share(position)
    return (other_requirement - mm_scale * cum - other_equity + s * q * position.entry_price) / (
        q * (s - mm_scale * bracket.mmr)
    )


@exact
def liquidation_price(
    position: PositionInput,
    *,
    other_equity: Decimal,
    other_requirement: Decimal,
    mm_scale: Decimal = ONE,
) -> Decimal | None:
    """Binance USD-M liquidation price: the mark of this position, every other mark held, at
    which equity equals maintenance margin, MM taken in the bracket of the notional at that
    price.

    `other_equity` is the equity besides this position's uPnL (cross: collateral value + the
    other cross positions' uPnL; isolated: its isolated margin), `other_requirement` the other
    cross positions' maintenance margin (0 for an isolated position).

    Solved in the mark's bracket first; when the price found lands in another bracket it is
    re-solved there, until it stays. Equity minus MM is monotone in the price, so this walk
    ends in the bracket holding the one root; a walk that comes back to a bracket it left has
    found a price on the floor between two brackets, where both give the same price (cum makes
    MM continuous there). None when that price is not positive: no positive price liquidates.

    The bracket is the one of the owner's notional at the price (`owner_notional`), the owner's
    other accounts held at their quantities; MM stays continuous and a line in P within a
    bracket, so the same walk finds the root.
    """
    table = position.brackets
    index, bracket = table.bracket_for(owner_notional(position))
    left: set[int] = set()
    while True:
        price = _price_meeting_maintenance(
            position,
            bracket,
            other_equity=other_equity,
            other_requirement=other_requirement,
            mm_scale=mm_scale,
        )
        landed, landed_bracket = table.bracket_for(owner_notional(position, price))
        if landed == index or landed in left:
            break
        left.add(index)
        index, bracket = landed, landed_bracket
    return price if price > 0 else None


@exact
def bankruptcy_price(position: PositionInput, *, other_equity: Decimal) -> Decimal | None:
    """Binance bankruptcy price: the mark at which the equity behind the position is zero
    (other_equity + side × q × (P − entry) = 0, no maintenance margin at all); none when that
    price is not positive."""
    price = position.entry_price - other_equity / (position.side * position.quantity)
    return price if price > 0 else None


@dataclass(frozen=True)
class LinkedMove:
    """What moves with one underlying in a cross pool (vectors/README.md, "Prices of one
    underlying move together"): the cross positions on it and the collateral lines in it, every
    price scaled by one factor `s`, everything else held. `excess(s)` is the pool's equity minus
    its maintenance margin at `s` (or its equity alone, for the bankruptcy price)."""

    positions: tuple[PositionInput, ...]
    lines: tuple[CollateralLine, ...]
    margin_balance: Decimal
    cross_maintenance: Decimal
    haircut_scale: Decimal
    mm_scale: Decimal

    def _moved_line_value(self, line: CollateralLine, scale: Decimal) -> Decimal:
        """The holding's value at its price × `scale`, its liquidity haircut held at the one
        taken at its price (like the liquidity add-on, it is re-taken at every revaluation)."""
        if scale == 0:  # a price of 0: the holding (or the debt) is worth nothing
            return ZERO
        moved = replace(line, price=line.price * scale)
        return collateral_line_value(moved, self.haircut_scale, keep=liquidity_keep(line))

    def equity(self, scale: Decimal) -> Decimal:
        """Margin balance with the linked prices × `scale`: each linked line's collateral value
        (haircut tiers at the moved value) and each linked position's uPnL at the moved mark
        replace those at s = 1."""
        equity = self.margin_balance
        for line in self.lines:
            moved = self._moved_line_value(line, scale)
            equity += moved - collateral_line_value(line, self.haircut_scale)
        for p in self.positions:
            equity += p.side * p.quantity * p.mark_price * (scale - ONE)
        return equity

    def maintenance(self, scale: Decimal) -> Decimal:
        """The pool's MM with each linked position's MM re-taken in the bracket of its owner's
        moved notional."""
        requirement = self.cross_maintenance
        for p in self.positions:
            share = position_owner_share(p)
            for moved_scale, sign in ((scale, ONE), (ONE, -ONE)):
                moved_mark = p.mark_price * moved_scale
                _, bracket = p.brackets.bracket_for(owner_notional(p, moved_mark))
                moved = notional(p.quantity, moved_mark)
                requirement += sign * maintenance_margin(moved, bracket, self.mm_scale, share)
        return requirement

    def excess(self, scale: Decimal, *, with_maintenance: bool) -> Decimal:
        if not with_maintenance:
            return self.equity(scale)
        return self.equity(scale) - self.maintenance(scale)

    def kinks(self) -> list[Decimal]:
        """Every positive `s` where a linked position's owner notional meets a bracket floor or
        a linked holding's value meets a haircut tier floor: between two of them `excess` is a
        straight line."""
        kinks = set()
        for p in self.positions:
            base = owner_notional(p)
            kinks.update(b.floor / base for b in p.brackets.brackets if b.floor > 0)
        for line in self.lines:
            value = holding_value(line)
            if value > 0:
                share = owner_share(line)
                kinks.update(t.floor * share / value for t in line.haircut_tiers if t.floor > 0)
        return sorted(kinks)


def linked_move(account: AccountInput, position: PositionInput) -> LinkedMove | None:
    """The linked move behind a cross position that names its underlying, or None when only
    its own mark moves (isolated, no underlying, or nothing else on that underlying: the
    single-price solution of `liquidation_price` is then the same root)."""
    if position.is_isolated or position.underlying is None:
        return None
    positions = tuple(
        p for p in account.positions if not p.is_isolated and p.underlying == position.underlying
    )
    lines = tuple(line for line in account.collateral if line.asset == position.underlying)
    if len(positions) == 1 and not lines:
        return None
    mm_scale = account.credit_tier.mm_scale
    figures = [_position_figures(p, mm_scale) for p in account.positions if not p.is_isolated]
    return LinkedMove(
        positions=positions,
        lines=lines,
        margin_balance=collateral_value(account.collateral, account.credit_tier.haircut_scale)
        + sum((f.unrealized_pnl for f in figures), ZERO),
        cross_maintenance=sum((f.maintenance_margin for f in figures), ZERO),
        haircut_scale=account.credit_tier.haircut_scale,
        mm_scale=mm_scale,
    )


@exact
def linked_scale_root(move: LinkedMove, *, with_maintenance: bool = True) -> Decimal | None:
    """The factor `s` on every linked price at which the pool's equity meets its maintenance
    margin (or zero, `with_maintenance=False`), the root nearest s = 1; None when no positive
    `s` has one.

    `excess(s)` is concave and piecewise linear (tiered haircuts take a falling share of a
    rising holding, rising mmr a growing share of a rising notional), so it has at most one
    root on each side of 1. Each side is walked outward from s = 1 over the straight pieces
    between kinks and the root found on a piece is exact; past the last kink the last piece
    runs on for ever. Concavity also says when a side holds no root: excess stays above
    min(excess(1), excess at the side's far end) all the way there.
    """
    known: dict[Decimal, Decimal] = {}

    def excess(scale: Decimal) -> Decimal:
        if scale not in known:
            known[scale] = move.excess(scale, with_maintenance=with_maintenance)
        return known[scale]

    def root_on_piece(low: Decimal, high: Decimal) -> Decimal | None:
        at_low, at_high = excess(low), excess(high)
        if at_low == 0 or at_high == 0:
            return low if at_low == 0 else high
        if (at_low > 0) == (at_high > 0):
            return None
        return low + at_low * (high - low) / (at_low - at_high)

    if excess(ONE) == 0:
        return ONE
    kinks = move.kinks()
    below = [ZERO, *(k for k in kinks if k < ONE), ONE]
    last = max(ONE, *kinks) if kinks else ONE
    roots = []
    if excess(ONE) < 0 or excess(ZERO) < 0:
        for low, high in reversed(list(pairwise(below))):
            root = root_on_piece(low, high)
            if root is not None:
                if root > 0:
                    roots.append(root)
                break
    # Past the last kink excess is the line through its values at `last` and 2 × `last`.
    last_slope = (excess(last * 2) - excess(last)) / last
    if excess(ONE) < 0 or excess(last) < 0 or last_slope < 0:
        for low, high in pairwise([ONE, *(k for k in kinks if k > ONE), last]):
            root = root_on_piece(low, high)
            if root is not None:
                roots.append(root)
                break
        else:
            if excess(last) != 0 and last_slope != 0 and (excess(last) > 0) != (last_slope > 0):
                roots.append(last - excess(last) / last_slope)
    if not roots:
        return None
    return min(roots, key=lambda root: abs(root - ONE))


@exact
def liquidation_distance(
    side: int, mark_price: Decimal, liquidation: Decimal | None
) -> Decimal | None:
    """How far the mark may move against the position before liquidation, as a fraction of the
    mark: side × (mark − liquidation) / mark; negative once the mark is past liquidation."""
    if liquidation is None:
        return None
    return side * (mark_price - liquidation) / mark_price


@dataclass(frozen=True)
class _PositionFigures:
    position: PositionInput
    notional: Decimal
    owner_notional: Decimal
    owner_share: Decimal
    bracket_index: int
    bracket: Bracket
    maintenance_margin: Decimal
    initial_margin: Decimal
    unrealized_pnl: Decimal
    liquidity_addon: Decimal


@exact
def liquidity_addon(position: PositionInput) -> Decimal:
    """The position's part of the cost of closing what its owner holds of the instrument over
    all their accounts (`margin.engine.liquidity.position_liquidity_addon`); 0 without a market
    depth."""
    if position.liquidity is None:
        return ZERO
    return position_liquidity_addon(
        notional(position.quantity, position.mark_price),
        owner_notional(position),
        position.liquidity,
    )


def _position_figures(position: PositionInput, mm_scale: Decimal) -> _PositionFigures:
    """MM in the bracket of the owner's notional, the position carrying its share of the
    owner's requirement (`maintenance_margin`); IM at the position's own leverage, which the
    owner's bracket caps when it is set (`max_leverage`)."""
    position_notional = notional(position.quantity, position.mark_price)
    held = owner_notional(position)
    share = position_owner_share(position)
    index, bracket = position.brackets.bracket_for(held)
    addon = liquidity_addon(position)
    return _PositionFigures(
        position=position,
        notional=position_notional,
        owner_notional=held,
        owner_share=share,
        bracket_index=index,
        bracket=bracket,
        maintenance_margin=maintenance_margin(position_notional, bracket, mm_scale, share) + addon,
        initial_margin=initial_margin(position_notional, position.leverage) + addon,
        liquidity_addon=addon,
        unrealized_pnl=unrealized_pnl(
            position.side, position.quantity, position.entry_price, position.mark_price
        ),
    )


def _scaled_mark(position: PositionInput, scale: Decimal | None) -> Decimal | None:
    return None if scale is None else position.mark_price * scale


@exact
def quote_account(account: AccountInput) -> AccountQuote:
    """Every figure of one account: the cross pool (Binance USD-M cross margin, multi-assets
    mode) and each position, isolated ones standing alone on their isolated margin; every
    figure in the settlement coin (`AccountInput.in_settlement_coin`)."""
    account = account.in_settlement_coin()
    mm_scale = account.credit_tier.mm_scale
    figures = [_position_figures(position, mm_scale) for position in account.positions]
    cross = [f for f in figures if not f.position.is_isolated]
    cross_collateral = collateral_value(account.collateral, account.credit_tier.haircut_scale)
    cross_pnl = sum((f.unrealized_pnl for f in cross), ZERO)
    cross_maintenance = sum((f.maintenance_margin for f in cross), ZERO)
    cross_initial = sum((f.initial_margin for f in cross), ZERO)
    balance = cross_collateral + cross_pnl

    quotes = []
    for f in figures:
        position = f.position
        other_equity, other_requirement = equity_behind(
            position,
            unrealized_pnl=f.unrealized_pnl,
            maintenance_margin=f.maintenance_margin,
            margin_balance=balance,
            cross_maintenance=cross_maintenance,
        )
        # The add-on is held at its value at the mark while the liquidation price moves the
        # mark (it is re-taken at every revaluation), so the price stays the root of a line.
        other_requirement += f.liquidity_addon
        isolated_ratio = (
            margin_ratio(f.maintenance_margin, position.isolated_margin + f.unrealized_pnl)
            if position.is_isolated
            else None
        )
        move = linked_move(account, position)
        if move is None:
            liquidation = liquidation_price(
                position,
                other_equity=other_equity,
                other_requirement=other_requirement,
                mm_scale=mm_scale,
            )
            bankruptcy = bankruptcy_price(position, other_equity=other_equity)
        else:
            liquidation = _scaled_mark(position, linked_scale_root(move))
            bankruptcy = _scaled_mark(position, linked_scale_root(move, with_maintenance=False))
        quotes.append(
            PositionQuote(
                id=position.id,
                notional=f.notional,
                bracket=f.bracket_index,
                mmr=f.bracket.mmr,
                cum=f.bracket.cum,
                max_leverage=f.bracket.max_leverage,
                maintenance_margin=f.maintenance_margin,
                initial_margin=f.initial_margin,
                unrealized_pnl=f.unrealized_pnl,
                liquidation_price=liquidation,
                bankruptcy_price=bankruptcy,
                margin_mode=position.margin_mode,
                isolated_margin=position.isolated_margin,
                isolated_margin_ratio=isolated_ratio,
                side=position.side,
                liquidation_bracket=(
                    None
                    if liquidation is None
                    else position.brackets.bracket_for(owner_notional(position, liquidation))[0]
                ),
                liquidation_distance=liquidation_distance(
                    position.side, position.mark_price, liquidation
                ),
                liquidity_addon=f.liquidity_addon,
                owner_notional=f.owner_notional,
                owner_share=f.owner_share,
            )
        )
    quote = AccountQuote(
        collateral_value=cross_collateral,
        unrealized_pnl=cross_pnl,
        margin_balance=balance,
        maintenance_margin=cross_maintenance,
        initial_margin=cross_initial,
        margin_ratio=margin_ratio(cross_maintenance, balance),
        withdrawable=withdrawable(cross_collateral, cross_pnl, cross_initial),
        positions=tuple(quotes),
    )
    return portfolio_quote(account, quote) if account.portfolio_margined else quote


def _without_price_solutions(row: PositionQuote) -> PositionQuote:
    if row.margin_mode != CROSS:
        return row
    return replace(
        row,
        liquidation_price=None,
        bankruptcy_price=None,
        liquidation_bracket=None,
        liquidation_distance=None,
    )


@exact
def portfolio_quote(account: AccountInput, linear: AccountQuote) -> AccountQuote:
    """The cross pool under portfolio margin (vectors/OPTIONS.md): margin balance = collateral
    value + Σ uPnL with options at their Black-76 mark; maintenance margin, initial margin, the
    margin ratio and the withdrawable follow the grid's portfolio MM and IM, not the tiered
    rules. Isolated positions keep their own figures.

    A cross row's liquidation and bankruptcy prices are left out (None): under the grid the
    requirement is the whole underlying's worst scenario, not a function of one mark, and a
    price solved under the tiered rule would promise a trader a level the grid does not keep
    (venues running portfolio margin publish none either)."""
    options = tuple(option_quote(option) for option in account.options)
    grid = portfolio_margin(account.options, account.positions)
    pnl = linear.unrealized_pnl + sum((o.unrealized_pnl for o in options), ZERO)
    balance = linear.collateral_value + pnl
    return replace(
        linear,
        unrealized_pnl=pnl,
        margin_balance=balance,
        maintenance_margin=grid.maintenance_margin,
        initial_margin=grid.initial_margin,
        margin_ratio=margin_ratio(grid.maintenance_margin, balance),
        withdrawable=withdrawable(linear.collateral_value, pnl, grid.initial_margin),
        positions=tuple(_without_price_solutions(row) for row in linear.positions),
        options=options,
        portfolio=grid,
        tiered_maintenance_margin=linear.maintenance_margin,
        tiered_initial_margin=linear.initial_margin,
    )

"""Liquidity: what it costs to close a position that is large against its market, and the
tiering of what one owner holds across all their accounts.

Square-root market impact: closing a quantity worth Q (USD) in a market that trades V (USD) over
the close-out horizon moves the price by about `Y · σ · √(Q / V)`, so the cost of the close is
`Q · Y · σ · √(Q / V)`, with σ the volatility over that horizon and Y a constant of order one.
Sources: Tóth, Lempérière, Deremble, de Lataillade, Kockelkoren and Bouchaud, "Anomalous price
impact and the critical nature of liquidity in financial markets", Phys. Rev. X 1, 021006 (2011);
Almgren, Thum, Hauptmann and Li, "Direct estimation of equity market impact", Risk (2005). Venues
charge the same idea as a liquidity add-on to margin (Deribit's and OKX's position-size
add-ons, CME SPAN's concentration charge).

Per-owner tiers: haircut tiers (and brackets) are tiered on what one owner holds over all their
accounts, then allocated back to each account pro rata, so splitting a holding gains nothing.
"""

from decimal import Decimal

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.precision import exact
from margin.engine.types import ONE, ZERO, Liquidity

DEFAULT_IMPACT_COEFFICIENT = Decimal("1")
"""Y of the square-root law; empirical estimates across markets lie between about 0.5 and 1
(Tóth et al. 2011, section II), so 1 errs on the side of more margin."""


def _check(field: str, value: Decimal, *, positive: bool = False) -> None:
    if not value.is_finite() or value < 0 or (positive and value == 0):
        bound = "positive" if positive else "at least 0"
        raise EngineInputError(field, f"must be a finite number {bound}, got {value}")


@exact
def impact_cost(
    notional: Decimal,
    depth: Decimal,
    volatility: Decimal,
    coefficient: Decimal = DEFAULT_IMPACT_COEFFICIENT,
) -> Decimal:
    """The square-root law's cost of closing `notional` (USD, its size whatever the side) in a
    market of `depth` (USD traded over the close-out horizon) at `volatility` (σ over that
    horizon): `notional · Y · σ · √(notional / depth)`. Zero for no position."""
    _check("notional", notional)
    _check("depth", depth, positive=True)
    _check("volatility", volatility)
    _check("coefficient", coefficient)
    if notional == 0:
        return ZERO
    return notional * coefficient * volatility * (notional / depth).sqrt()


def impact_costs(
    notional: np.ndarray, depth: np.ndarray, volatility: np.ndarray, coefficient: float = 1.0
) -> np.ndarray:
    """`impact_cost` for a whole book: every argument an array of the same shape (or a scalar)."""
    notional = np.abs(np.asarray(notional, dtype=np.float64))
    return notional * coefficient * volatility * np.sqrt(notional / depth)


@exact
def liquidity_haircut(
    value: Decimal,
    depth: Decimal,
    volatility: Decimal,
    coefficient: Decimal = DEFAULT_IMPACT_COEFFICIENT,
) -> Decimal:
    """The share of a collateral holding's value that selling it all would cost, on top of its
    tiered haircut: `Y · σ · √(value / depth)`, at most 1 (a holding far larger than its market
    is worth little as margin). A liability takes none: a debt is owed whole."""
    if value <= 0:
        return ZERO
    return min(ONE, impact_cost(value, depth, volatility, coefficient) / value)


@exact
def position_liquidity_addon(
    notional: Decimal, owner_notional: Decimal, liquidity: Liquidity
) -> Decimal:
    """A position's liquidity add-on: its pro-rata part of the cost of closing all its owner
    holds of the instrument (`owner_notional`, over all their accounts, long and short alike),
    notional / owner_notional × impact_cost(owner_notional) = notional · Y · σ ·
    √(owner_notional / depth). Splitting a position over accounts changes nothing."""
    if notional == 0:
        return ZERO
    cost = impact_cost(owner_notional, liquidity.depth, liquidity.volatility, liquidity.coefficient)
    return cost * notional / owner_notional


@exact
def holding_liquidity_haircut(owner_value: Decimal, liquidity: Liquidity) -> Decimal:
    """The extra haircut of a holding whose owner holds `owner_value` of the asset over all
    their accounts (`liquidity_haircut` on the owner's whole holding)."""
    return liquidity_haircut(
        owner_value, liquidity.depth, liquidity.volatility, liquidity.coefficient
    )


def impact_rate(depth: np.ndarray, volatility: np.ndarray, coefficient: float = 1.0) -> np.ndarray:
    """Y · σ / √depth per market, what the vector engine carries (`Book.instrument_impact`,
    `Book.asset_impact`): the add-on is then notional · rate · √owner_notional; 0 where a market
    has no depth (nan), so it takes no add-on."""
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = coefficient * np.asarray(volatility, dtype=np.float64) / np.sqrt(depth)
    return np.where(np.isfinite(rate) & (depth > 0), rate, 0.0)


@exact
def concentration_share(owner_notional: Decimal, open_interest: Decimal, floor: Decimal) -> Decimal:
    """An owner's share of an instrument's open interest: what they hold over all their
    accounts (long and short, USD) over the open interest of every account, or over `floor`
    while the open interest is smaller, so that the first traders of a thin market are not
    each "all of it"."""
    _check("owner_notional", owner_notional)
    _check("open_interest", open_interest)
    _check("floor", floor)
    base = max(open_interest, floor)
    return ZERO if base == 0 else owner_notional / base


@exact
def concentration_refusal(
    *,
    instrument: str,
    owner_notional: Decimal,
    open_interest: Decimal,
    limit_share: Decimal,
    floor: Decimal,
) -> str | None:
    """Why a trade adding to an owner's holding of `instrument` is refused, or None: above the
    published share of open interest the instrument is reduce-only for that owner (as a
    venue's open-interest limit, e.g. Binance's and Bybit's per-symbol position limits)."""
    share = concentration_share(owner_notional, open_interest, floor)
    if share <= limit_share:
        return None
    base = max(open_interest, floor)
    return (
        f"You would hold {share:.1%} of {instrument}'s open interest "
        f"({owner_notional:,.0f} of {base:,.0f} USD over all your accounts), above the "
        f"published limit of {limit_share:.0%}: {instrument} is reduce-only for you while you "
        "are above it."
    )

"""What the liquidity charges read: each market's depth and volatility over the close-out
horizon, and what each owner holds over all their accounts (`margin.engine.liquidity`)."""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Sum
from django.db.models.functions import Abs

from margin.db import decimal, rows, table
from margin.engine.liquidity import (
    concentration_share,
    holding_liquidity_haircut,
    impact_rate,
    position_liquidity_addon,
)
from margin.engine.types import Liquidity
from margin.models import (
    AssetPrice,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarkPrice,
    ParameterVersion,
    Position,
    RevaluationTick,
)
from margin.selectors.parameters import EngineTerms, engine_terms


@dataclass(frozen=True)
class LiquidityTerms:
    """Per instrument and per asset symbol, the market a close-out runs into (absent: no depth
    known, no charge): depth and σ over the stress horizon, Y of the version."""

    instruments: dict[str, Liquidity]
    assets: dict[str, Liquidity]

    def instrument_impact(self, symbols) -> np.ndarray:
        """Y · σ / √depth of each instrument (`Book.instrument_impact`), 0 without a depth."""
        return _impacts([self.instruments.get(symbol) for symbol in symbols])

    def asset_impact(self, symbols) -> np.ndarray:
        return _impacts([self.assets.get(symbol) for symbol in symbols])


def _impacts(markets: list[Liquidity | None]) -> np.ndarray:
    depth = np.array([np.nan if m is None else float(m.depth) for m in markets])
    volatility = np.array([0.0 if m is None else float(m.volatility) for m in markets])
    coefficient = np.array([0.0 if m is None else float(m.coefficient) for m in markets])
    return impact_rate(depth, volatility) * coefficient


def latest_estimate() -> dict:
    """The volatility estimate the latest tick froze ({} before the first)."""
    latest = (
        RevaluationTick.objects.exclude(volatility={})
        .order_by("-pk")
        .values_list("volatility", flat=True)
        .first()
    )
    return latest or {}


def daily_volatility(terms: EngineTerms, estimate: dict, names) -> dict[str, Decimal]:
    """σ per day of each asset as the stress model takes it: the estimate, floored at the
    published floor; the floor alone without an estimate."""
    column = {name: n for n, name in enumerate(estimate.get("assets", ()))}
    vols = estimate.get("vol", ())
    result = {}
    for name in names:
        floor = terms.volatility_floor(name)
        estimated = vols[column[name]] if name in column else None
        result[name] = max(floor, Decimal(repr(estimated))) if estimated else floor
    return result


def markets_of(
    terms: EngineTerms,
    *,
    daily_vol: dict[str, Decimal],
    asset_depths: dict[str, Decimal | None],
    instrument_depths: dict[str, tuple[str, Decimal | None]],
) -> LiquidityTerms:
    """Each published daily depth × the stress horizon with σ per day × √horizon (of the
    underlying, for an instrument) and the version's Y; a market without a depth is left out."""
    horizon = terms.stress_horizon_days

    def market(depth_per_day: Decimal, symbol: str) -> Liquidity:
        return Liquidity(
            depth=depth_per_day * horizon,
            volatility=daily_vol[symbol] * horizon.sqrt(),
            coefficient=terms.liquidity_impact_coefficient,
        )

    return LiquidityTerms(
        instruments={
            symbol: market(depth, underlying)
            for symbol, (underlying, depth) in instrument_depths.items()
            if depth and depth > 0 and underlying in daily_vol
        },
        assets={
            symbol: market(depth, symbol)
            for symbol, depth in asset_depths.items()
            if depth and depth > 0 and symbol in daily_vol
        },
    )


def liquidity_terms(params: ParameterVersion, estimate: dict | None = None) -> LiquidityTerms:
    """The markets under `params` on the volatility `estimate` a tick froze (default: the
    latest tick's)."""
    terms = engine_terms(params)
    asset_depths = dict(
        AssetPrice.objects.filter(depth_usd__gt=0).values_list("asset__symbol", "depth_usd")
    )
    instrument_depths = {
        symbol: (underlying, depth)
        for symbol, underlying, depth in MarkPrice.objects.filter(depth_usd__gt=0).values_list(
            "instrument__symbol", "instrument__underlying__symbol", "depth_usd"
        )
    }
    if not asset_depths and not instrument_depths:
        return LiquidityTerms(instruments={}, assets={})
    names = set(asset_depths) | {underlying for underlying, _ in instrument_depths.values()}
    daily_vol = daily_volatility(terms, latest_estimate() if estimate is None else estimate, names)
    return markets_of(
        terms,
        daily_vol=daily_vol,
        asset_depths=asset_depths,
        instrument_depths=instrument_depths,
    )


def _owner_totals(rows, owner_of_row: np.ndarray, key_of_row: np.ndarray, own: np.ndarray):
    """Each row's owner total from (owner, key, total) `rows`, its own amount where the owner
    has no other account."""
    totals = np.array(own, dtype=np.float64, copy=True)
    found = list(rows)
    if not found or not len(totals):
        return totals
    width = int(max(key_of_row.max(initial=0), max(k for _, k, _ in found))) + 1
    keys = np.array([o * width + k for o, k, _ in found], dtype=np.int64)
    values = np.array([float(t) for _, _, t in found])
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    wanted = owner_of_row.astype(np.int64) * width + key_of_row.astype(np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    hit = keys[at] == wanted
    totals[hit] = np.maximum(values[at[hit]], own[hit])
    return totals


def owner_position_quantities(
    owner_of_position: np.ndarray,
    instrument_ids: np.ndarray,
    quantities: np.ndarray,
    shared: list[int],
) -> np.ndarray:
    """What each position's owner holds of its instrument over all their accounts, long and
    short alike (|quantity| summed); `shared`: the owners with more than one account
    (`MarginAccount.shares_owner`)."""
    if not shared:
        return np.abs(np.asarray(quantities, dtype=np.float64))
    rows = (
        Position.objects.exclude(quantity=0)
        .filter(margin_account__owner_id__in=shared)
        .values("margin_account__owner_id", "instrument_id")
        .annotate(total=Sum(Abs("quantity")))
        .values_list("margin_account__owner_id", "instrument_id", "total")
    )
    return _owner_totals(rows, owner_of_position, instrument_ids, np.abs(quantities))


def owner_wallet_quantities(
    owner_of_line: np.ndarray, asset_ids: np.ndarray, quantities: np.ndarray, shared: list[int]
) -> np.ndarray:
    """What each wallet's owner holds of its asset over all their cross wallets (holdings only:
    a debt in one account does not offset a holding in another); 0 for a debt. `shared`: the
    owners with more than one account (`MarginAccount.shares_owner`)."""
    held = np.maximum(np.asarray(quantities, dtype=np.float64), 0.0)
    if not shared:
        return held
    rows = (
        LedgerAccount.objects.filter(
            kind=LedgerAccountKind.WALLET,
            balance__gt=0,
            margin_account__owner_id__in=shared,
        )
        .values("margin_account__owner_id", "asset_id")
        .annotate(total=Sum("balance"))
        .values_list("margin_account__owner_id", "asset_id", "total")
    )
    totals = _owner_totals(rows, owner_of_line, asset_ids, held)
    return np.where(held > 0, totals, 0.0)


def open_interest(instrument_id: int, owner_id: int) -> tuple[Decimal, Decimal]:
    """(what `owner_id` holds of the instrument over all their accounts, what every account
    holds), each Σ |quantity|: one query."""
    found = rows(
        f"SELECT COALESCE(SUM(CASE WHEN a.owner_id = %s THEN ABS(p.quantity) ELSE 0 END), 0), "
        f"COALESCE(SUM(ABS(p.quantity)), 0) FROM {table(Position)} p "
        f"JOIN {table(MarginAccount)} a ON a.id = p.margin_account_id "
        "WHERE p.instrument_id = %s",
        [owner_id, instrument_id],
    )
    owner, total = found[0]
    return decimal(owner), decimal(total)


def concentrated_instruments(owner_id: int, terms: EngineTerms, marks: dict[str, Decimal]):
    """The instruments where `owner_id` holds more than the published share of open interest
    (reduce-only for them): symbol → (owner notional, open interest notional)."""
    result = {}
    for symbol, owner, total in rows(
        f"SELECT i.symbol, SUM(CASE WHEN a.owner_id = %s THEN ABS(p.quantity) ELSE 0 END), "
        f"SUM(ABS(p.quantity)) FROM {table(Position)} p "
        f"JOIN {table(MarginAccount)} a ON a.id = p.margin_account_id "
        f"JOIN {table(Instrument)} i ON i.id = p.instrument_id GROUP BY i.symbol",
        [owner_id],
    ):
        if symbol not in marks or not owner:
            continue
        owner_notional, total_notional = (
            decimal(owner) * marks[symbol],
            decimal(total) * marks[symbol],
        )
        share = concentration_share(owner_notional, total_notional, terms.concentration_floor_usd)
        if share > terms.concentration_limit_share:
            result[symbol] = (owner_notional, total_notional)
    return result


EXAMPLE_NOTIONAL = Decimal(1_000_000)
"""The size the disclosure prices each market's charge at."""


@dataclass(frozen=True)
class MarketDisclosure:
    symbol: str
    kind: str  # "instrument" or "asset"
    depth_per_day: Decimal
    market: Liquidity
    example_charge: Decimal  # add-on (instrument) or haircut (asset) on EXAMPLE_NOTIONAL, USD


def liquidity_disclosure(params: ParameterVersion) -> list[MarketDisclosure]:
    """Every market's published depth and what its charge is on 1M USD (`/disclosure/`)."""
    terms = liquidity_terms(params)
    horizon = Decimal(params.stress_horizon_days)
    rows = [
        MarketDisclosure(
            symbol=symbol,
            kind="instrument",
            depth_per_day=market.depth / horizon,
            market=market,
            example_charge=position_liquidity_addon(EXAMPLE_NOTIONAL, EXAMPLE_NOTIONAL, market),
        )
        for symbol, market in sorted(terms.instruments.items())
    ]
    rows += [
        MarketDisclosure(
            symbol=symbol,
            kind="asset",
            depth_per_day=market.depth / horizon,
            market=market,
            example_charge=EXAMPLE_NOTIONAL * holding_liquidity_haircut(EXAMPLE_NOTIONAL, market),
        )
        for symbol, market in sorted(terms.assets.items())
    ]
    return rows

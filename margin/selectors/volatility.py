"""The stress model's inputs: volatility and correlation of every asset's index, estimated from
hourly returns, and the published floors that stand in where there is no estimate.

Returns are taken at a horizon that suits them: one hour of market time (the last accepted
index print of each hour, carried forward over an hour without one). Ten-second samples, as
before, measured micro-noise (bid/ask bounce, one venue's print) and not the risk of a day, and
their correlations came out near zero because venues print out of step (the Epps effect).
RiskMetrics' EWMA runs over the hourly returns with the version's λ per hour (0.94: a half-life
of 11.2 hours), on the last MAX_RETURNS of them; the hourly covariance × 24 is the daily one
(returns of independent hours add up). An asset with fewer than MIN_RETURNS hourly returns of
its own has no estimate: the stress model takes its published floor and no correlation.

The estimate changes only when an hour closes, so a tick reuses the previous tick's estimate
within the same hour instead of reading the history again.
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings

from margin.engine.stress import StressModel, ewma_covariance, half_life
from margin.models import Asset, AssetPriceHistory, ParameterVersion, RevaluationTick
from margin.selectors.parameters import EngineTerms, engine_terms, parameters_in_force

RETURN_PERIOD_S = 3600.0
"""One return per hour of market time."""
PERIODS_PER_DAY = 24
MAX_RETURNS = 120
"""Five days of hourly returns: at λ = 0.94 the oldest weighs 0.06 % of the newest."""
MIN_RETURNS = 10


def market_seconds_per_second() -> float:
    """How many seconds of market time pass per second of the clock: the demo market runs
    DEMO_MARKET_SPEED times faster; a real market runs at 1."""
    return float(settings.DEMO_MARKET_SPEED) if settings.DEMO_MARKET_ENABLED else 1.0


def return_period_s() -> float:
    """One return period (an hour of market time) in seconds of the clock."""
    return RETURN_PERIOD_S / market_seconds_per_second()


def period_end(at: datetime) -> datetime:
    """The close of the last whole return period at `at` (periods aligned to the epoch)."""
    period = return_period_s()
    return datetime.fromtimestamp(at.timestamp() // period * period, tz=UTC)


def hourly_closes(asset_names: tuple[str, ...], *, until: datetime) -> np.ndarray:
    """(MAX_RETURNS + 1) periods × assets: each asset's last accepted index print of each period
    ending at `until`'s period close, oldest first; nan before an asset's first print."""
    period = return_period_s()
    end = period_end(until)
    start = end - timedelta(seconds=period * (MAX_RETURNS + 1))
    column = {name: n for n, name in enumerate(asset_names)}
    closes = np.full((MAX_RETURNS + 1, len(asset_names)), np.nan)
    rows = AssetPriceHistory.objects.filter(
        at__gt=start, at__lte=end, asset__symbol__in=asset_names
    ).order_by("at")
    origin = start.timestamp()
    for symbol, at, price in rows.values_list("asset__symbol", "at", "price").iterator(2000):
        # A print exactly at a close belongs to the period it closes.
        bucket = min(int(np.ceil((at.timestamp() - origin) / period)) - 1, MAX_RETURNS)
        closes[max(bucket, 0), column[symbol]] = float(price)
    return closes


def volatility_estimate(
    asset_names: tuple[str, ...], closes: np.ndarray, *, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Daily σ and Σ from hourly closes (periods × assets, nan where missing): nan for an asset
    with fewer than MIN_RETURNS returns of its own. The window starts at the first hour any
    estimated asset printed. Gaps after an asset's first print carry its last close forward (no
    move that hour); before it the asset is held flat, which biases its σ down and its floor
    covers."""
    n = len(asset_names)
    vol, cov = np.full(n, np.nan), np.full((n, n), np.nan)
    seen = np.isfinite(closes)
    estimated = seen.sum(axis=0) > MIN_RETURNS
    if not estimated.any():
        return vol, cov
    # Hours before any estimated asset printed are no hours of history at all.
    filled = closes[:, estimated]
    filled = filled[np.argmax(np.isfinite(filled).any(axis=1)) :].copy()
    for row in range(1, len(filled)):
        gaps = np.isnan(filled[row])
        filled[row, gaps] = filled[row - 1, gaps]
    first = np.array([col[np.isfinite(col)][0] for col in filled.T])
    filled = np.where(np.isnan(filled), first, filled)
    hourly_vol, hourly_cov = ewma_covariance(filled, lam=lam)
    vol[estimated] = hourly_vol * np.sqrt(PERIODS_PER_DAY)
    cov[np.ix_(estimated, estimated)] = hourly_cov * PERIODS_PER_DAY
    return vol, cov


def _nullable(values: np.ndarray) -> list:
    return np.where(np.isfinite(values), values, None).tolist()


def tick_volatility(
    *, until: datetime, params: ParameterVersion, previous: RevaluationTick | None
) -> dict:
    """What a tick freezes for its stress margin: the estimate of the period closed at `until`
    (daily σ and Σ, None where an asset has none) with the period, the number of returns and
    the half-life; the previous tick's when it is of the same period and decay."""
    lam = float(params.stress_ewma_lambda)
    end = period_end(until).isoformat()
    known = previous.volatility if previous is not None else {}
    if known.get("period_end") == end and known.get("lambda") == lam:
        return known
    names = tuple(Asset.objects.order_by("pk").values_list("symbol", flat=True))
    closes = hourly_closes(names, until=until)
    vol, cov = volatility_estimate(names, closes, lam=lam)
    return {
        "assets": list(names),
        "vol": _nullable(vol),
        "cov": [_nullable(row) for row in cov],
        "period_end": end,
        "lambda": lam,
        "half_life_hours": half_life(lam),
        "returns": int(np.isfinite(closes).any(axis=1).sum()) - 1,
    }


def stress_model(
    params: ParameterVersion,
    estimate: dict,
    asset_names: tuple[str, ...],
    *,
    floors: Mapping[str, Decimal] | None = None,
    terms: EngineTerms | None = None,
) -> StressModel:
    """The stress model in the order of `asset_names`: the frozen `estimate` (a tick's
    volatility), the floors and k and horizon of `params` (`floors` in place of some: a proposed
    change). An asset the estimate lacks stands at its floor; no estimate at all (the first
    ticks) is all floors. `terms`: the engine terms of `params` when the caller holds them (a
    market read's), which saves the query that finds them."""
    terms = engine_terms(params) if terms is None else terms
    if floors:
        terms = replace(terms, volatility_floors={**terms.volatility_floors, **floors})
    floor_of = np.array([float(terms.volatility_floor(name)) for name in asset_names])
    column = {name: n for n, name in enumerate(estimate.get("assets", ()))}
    rows = np.array([column.get(name, -1) for name in asset_names], dtype=np.int64)
    known = rows >= 0
    vol = np.full(len(asset_names), np.nan)
    cov = np.full((len(asset_names),) * 2, np.nan)
    if column:
        frozen_vol = np.array(estimate["vol"], dtype=float)
        frozen_cov = np.array(estimate["cov"], dtype=float)
        vol[known] = frozen_vol[rows[known]]
        cov[np.ix_(known, known)] = frozen_cov[np.ix_(rows[known], rows[known])]
    return StressModel.build(
        asset_names,
        floor_of,
        estimated_vol=vol,
        estimated_covariance=cov,
        k=float(params.stress_k_sigma),
        horizon_days=float(params.stress_horizon_days),
    )


def tick_stress_model(tick: RevaluationTick, asset_names: tuple[str, ...]) -> StressModel:
    """The stress model a tick froze, in the order of `asset_names`."""
    return stress_model(tick.parameter_version, tick.volatility or {}, asset_names)


def stress_model_now() -> StressModel:
    """The model a figure between ticks uses (an order's or a withdrawal's check, a trader's
    page): the latest tick's estimate under the parameters in force, over every asset."""
    names = tuple(Asset.objects.order_by("pk").values_list("symbol", flat=True))
    latest = (
        RevaluationTick.objects.exclude(volatility={})
        .order_by("-pk")
        .values_list("volatility", flat=True)
        .first()
    )
    return stress_model(parameters_in_force(), latest or {}, names)

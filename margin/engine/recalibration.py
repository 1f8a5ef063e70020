"""Recalibration: what the margin parameters should be, estimated from the price history.

A maintenance rate (or a haircut) must cover the move of the close-out horizon at a published
confidence. It is estimated as the larger of two figures:
- the expected shortfall at that confidence of the horizon's moves (the mean of the worst
  (1 − c) share), the measure CCPs and the Basel FRTB use because it sees the tail's depth;
- a volatility floor: `z_c · max(σ_EWMA, σ_floor) · √horizon`, so that a calm stretch of history
  (or a short one) never proposes less than a published minimum.
σ_EWMA is an exponentially weighted volatility of one-step log returns with a documented
half-life (RiskMetrics' idea; half-life h gives the decay λ = 0.5^(1/h)).
The stress k σ is recalibrated the same way: the number of horizon-σ that the expected
shortfall of the moves amounts to.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from margin.engine.backtest import horizon_moves
from margin.engine.errors import EngineInputError


def _returns(prices: np.ndarray) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1 or prices.size < 2 or not np.all(prices > 0):
        raise EngineInputError("prices", "must be a history of at least two positive prices")
    return np.diff(np.log(prices))


def ewma_volatility(prices: np.ndarray, half_life: float) -> float:
    """EWMA volatility of one-step log returns (zero mean), the newest return weighted 1, one
    `half_life` steps older ½; weights normalised over the returns at hand."""
    if not half_life > 0:
        raise EngineInputError("half_life", f"must be positive, got {half_life}")
    returns = _returns(prices)
    decay = 0.5 ** (1.0 / half_life)
    weights = decay ** np.arange(returns.size - 1, -1, -1, dtype=np.float64)
    return math.sqrt(float(np.dot(weights, returns**2) / weights.sum()))


def expected_shortfall(losses: np.ndarray, confidence: float) -> float:
    """Mean of the worst `1 − confidence` share of `losses` (at least one of them): the
    historical expected shortfall."""
    if not 0 < confidence < 1:
        raise EngineInputError("confidence", f"must be within (0, 1), got {confidence}")
    losses = np.sort(np.asarray(losses, dtype=np.float64))[::-1]
    if losses.size == 0:
        raise EngineInputError("losses", "must not be empty")
    # Rounded first: 100 × (1 − 0.95) is 5.000000000000004 in binary, and the tail is 5 losses.
    tail = max(1, math.ceil(round(losses.size * (1.0 - confidence), 9)))
    return float(losses[:tail].mean())


@dataclass(frozen=True)
class RateEstimate:
    """A proposed rate with the two figures it is the larger of, so a reviewer sees which binds."""

    rate: float
    expected_shortfall: float
    volatility_floor: float
    volatility: float

    @property
    def binding(self) -> str:
        return "expected_shortfall" if self.expected_shortfall >= self.volatility_floor else "floor"


def covering_rate(
    prices: np.ndarray,
    *,
    horizon: int,
    confidence: float,
    half_life: float,
    volatility_floor: float,
    downside_only: bool = False,
) -> RateEstimate:
    """The rate that covers the close-out horizon's moves at `confidence`: a maintenance rate
    (both sides lose: the absolute move) or, with `downside_only`, a collateral haircut (a
    holding loses when its price falls)."""
    moves = horizon_moves(prices, horizon)
    losses = -moves if downside_only else np.abs(moves)
    shortfall = max(0.0, expected_shortfall(losses, confidence))
    sigma = ewma_volatility(prices, half_life)
    z = NormalDist().inv_cdf(confidence)
    floor = z * max(sigma, volatility_floor) * math.sqrt(horizon)
    return RateEstimate(
        rate=max(shortfall, floor),
        expected_shortfall=shortfall,
        volatility_floor=floor,
        volatility=sigma,
    )


def implied_sigmas(
    prices: np.ndarray,
    *,
    horizon: int,
    confidence: float,
    half_life: float,
    volatility_floor: float,
) -> float:
    """The stress k: how many horizon standard deviations the expected shortfall of the absolute
    horizon moves amounts to (σ floored as above)."""
    estimate = covering_rate(
        prices,
        horizon=horizon,
        confidence=confidence,
        half_life=half_life,
        volatility_floor=volatility_floor,
    )
    sigma = max(estimate.volatility, volatility_floor) * math.sqrt(horizon)
    return estimate.expected_shortfall / sigma


def drifted(current: float, proposed: float, threshold: float) -> bool:
    """A parameter has drifted when the proposed value differs from the current one by more than
    `threshold` of the current one (a new value from nothing always has)."""
    if current == 0:
        return proposed != 0
    return abs(proposed - current) / abs(current) > threshold

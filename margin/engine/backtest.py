"""Backtesting of margin coverage: how often a maintenance rate would have covered the price move
over the close-out horizon on a recorded history, and whether the count of misses is what the
rate's confidence promises (Kupiec's proportion-of-failures test).

Source: P. Kupiec, "Techniques for Verifying the Accuracy of Risk Measurement Models", Journal of
Derivatives 3(2), 1995; the same test the Basel traffic-light backtest and CCPs' margin
backtests (CPMI-IOSCO PFMI, principle 6) rest on.
"""

import math
from dataclasses import dataclass

import numpy as np

from margin.engine.errors import EngineInputError


@dataclass(frozen=True)
class CoverageBacktest:
    """The outcome of one backtest: how many horizons were seen, how many moves the rate missed,
    and Kupiec's likelihood ratio with its p-value (χ² with one degree of freedom)."""

    observations: int
    exceedances: int
    coverage: float
    expected_exceedance_rate: float
    kupiec_lr: float
    kupiec_p_value: float

    def passes(self, significance: float = 0.05) -> bool:
        """Kupiec does not reject the rate's confidence at `significance`."""
        return self.kupiec_p_value >= significance


def horizon_moves(prices: np.ndarray, horizon: int) -> np.ndarray:
    """Relative price moves over `horizon` steps of a history (oldest first), one per start
    point: `P[t + h] / P[t] − 1`. Overlapping windows, as CCP backtests use on daily data."""
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1 or not np.all(np.isfinite(prices)) or not np.all(prices > 0):
        raise EngineInputError("prices", "must be a one-dimensional history of positive prices")
    if horizon < 1:
        raise EngineInputError("horizon", f"must be at least one step, got {horizon}")
    if prices.size <= horizon:
        raise EngineInputError("prices", f"needs more than {horizon} prices, got {prices.size}")
    return prices[horizon:] / prices[:-horizon] - 1.0


def _log_likelihood(failures: int, trials: int, rate: float) -> float:
    """log of rate^failures × (1 − rate)^(trials − failures), with 0·log 0 taken as 0."""
    total = 0.0
    if failures:
        total += failures * math.log(rate)
    if trials - failures:
        total += (trials - failures) * math.log1p(-rate)
    return total


def kupiec_pof(observations: int, exceedances: int, expected_rate: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures likelihood ratio and its p-value:
    `LR = −2 ln[(1−p)^(n−x) p^x] + 2 ln[(1−x/n)^(n−x) (x/n)^x]`, χ²(1) under the null; the
    p-value of χ²(1) is `erfc(√(LR / 2))`."""
    if observations < 1:
        raise EngineInputError("observations", "must be at least 1")
    if not 0 <= exceedances <= observations:
        raise EngineInputError("exceedances", f"must be within [0, {observations}]")
    if not 0 < expected_rate < 1:
        raise EngineInputError("expected_rate", f"must be within (0, 1), got {expected_rate}")
    observed = exceedances / observations
    ratio = -2.0 * (
        _log_likelihood(exceedances, observations, expected_rate)
        - _log_likelihood(exceedances, observations, observed)
    )
    ratio = max(ratio, 0.0)
    return ratio, math.erfc(math.sqrt(ratio / 2.0))


def coverage_backtest(
    prices: np.ndarray, horizon: int, maintenance_rate: float, confidence: float
) -> CoverageBacktest:
    """Would `maintenance_rate` (margin as a share of notional) have covered a position's loss
    over the close-out `horizon`, long or short, at every start point of the history? A move
    larger than the rate in either direction is an exceedance: the side it hurts would have lost
    more than its margin. `confidence` is the share of horizons the rate is meant to cover."""
    if not 0 < confidence < 1:
        raise EngineInputError("confidence", f"must be within (0, 1), got {confidence}")
    if not maintenance_rate > 0:
        raise EngineInputError("maintenance_rate", f"must be positive, got {maintenance_rate}")
    moves = horizon_moves(prices, horizon)
    exceedances = int(np.count_nonzero(np.abs(moves) > maintenance_rate))
    observations = int(moves.size)
    expected = 1.0 - confidence
    ratio, p_value = kupiec_pof(observations, exceedances, expected)
    return CoverageBacktest(
        observations=observations,
        exceedances=exceedances,
        coverage=1.0 - exceedances / observations,
        expected_exceedance_rate=expected,
        kupiec_lr=ratio,
        kupiec_p_value=p_value,
    )

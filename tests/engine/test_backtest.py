"""Margin coverage backtest (Kupiec) and recalibration estimators."""

import math

import numpy as np
import pytest

from margin.engine.backtest import coverage_backtest, horizon_moves, kupiec_pof
from margin.engine.errors import EngineInputError
from margin.engine.recalibration import (
    covering_rate,
    drifted,
    ewma_volatility,
    expected_shortfall,
    implied_sigmas,
)


def test_kupiec_five_misses_in_250_days_at_99_percent():
    # The Basel backtest's textbook case (Jorion, Value at Risk, 3rd ed., ch. 6): 5 exceptions in
    # 250 days against a 1% rate gives LR ≈ 1.96, not rejected at 5% (p ≈ 0.16).
    ratio, p_value = kupiec_pof(250, 5, 0.01)
    assert ratio == pytest.approx(1.9568, abs=1e-4)
    assert p_value == pytest.approx(0.1619, abs=1e-3)


def test_kupiec_rejects_far_too_many_misses():
    ratio, p_value = kupiec_pof(250, 15, 0.01)
    assert p_value < 0.001 < ratio


def test_kupiec_with_no_miss_at_all():
    ratio, p_value = kupiec_pof(1000, 0, 0.01)
    assert ratio == pytest.approx(-2 * 1000 * math.log(0.99))
    assert p_value < 0.001


def test_backtest_finds_every_planted_exceedance():
    # given a quiet history (moves of ±0.5%) with 7 planted jumps of 8% that stay
    rng = np.random.default_rng(7)
    steps = rng.choice([-0.005, 0.005], size=2000)
    planted = rng.choice(np.arange(10, 1990), size=7, replace=False)
    steps[planted] = 0.08
    prices = 100.0 * np.cumprod(1.0 + np.concatenate([[0.0], steps]))
    # when  a 4% maintenance rate is backtested over one step at 99.5%
    result = coverage_backtest(prices, horizon=1, maintenance_rate=0.04, confidence=0.995)
    # then  exactly the planted jumps are exceedances
    assert result.observations == 2000
    assert result.exceedances == 7
    assert result.coverage == pytest.approx(1 - 7 / 2000)
    assert result.passes()


def test_backtest_fails_a_rate_too_low_for_its_history():
    rng = np.random.default_rng(3)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, 3000)))
    result = coverage_backtest(prices, horizon=1, maintenance_rate=0.02, confidence=0.99)
    assert result.exceedances > 500
    assert not result.passes()


def test_horizon_moves_refuse_a_short_history():
    with pytest.raises(EngineInputError, match="prices"):
        horizon_moves(np.array([1.0, 2.0]), 2)


def test_recalibration_recovers_a_known_volatility():
    # given a GBM history with a daily σ of 2%
    rng = np.random.default_rng(11)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 20000)))
    # then  EWMA with a long half-life recovers σ within 5%
    assert ewma_volatility(prices, half_life=5000) == pytest.approx(0.02, rel=0.05)
    # and   the 99% expected shortfall of the absolute move is ≈ 2.892 σ (φ(2.5758) / 0.005)
    estimate = covering_rate(
        prices, horizon=1, confidence=0.99, half_life=5000, volatility_floor=0.001
    )
    assert estimate.expected_shortfall == pytest.approx(2.892 * 0.02, rel=0.1)
    assert estimate.binding == "expected_shortfall"
    assert implied_sigmas(
        prices, horizon=1, confidence=0.99, half_life=5000, volatility_floor=0.001
    ) == pytest.approx(2.892, rel=0.1)


def test_a_calm_history_proposes_the_floor():
    prices = 100.0 * np.cumprod(np.full(500, 1.0001))
    estimate = covering_rate(
        prices, horizon=4, confidence=0.99, half_life=50, volatility_floor=0.01
    )
    assert estimate.binding == "floor"
    assert estimate.rate == pytest.approx(2.3263 * 0.01 * 2, rel=1e-4)


def test_a_haircut_looks_at_falls_only():
    rises = 100.0 * np.cumprod(np.full(300, 1.05))
    estimate = covering_rate(
        rises, horizon=1, confidence=0.99, half_life=50, volatility_floor=0.001, downside_only=True
    )
    assert estimate.expected_shortfall == 0


def test_expected_shortfall_is_the_mean_of_the_tail():
    assert expected_shortfall(np.arange(1.0, 101.0), 0.95) == pytest.approx(98.0)


def test_drift_threshold():
    assert drifted(0.004, 0.0046, 0.1)
    assert not drifted(0.004, 0.0043, 0.1)
    assert drifted(0.0, 0.001, 0.1)

"""Stress margin: EWMA covariance, the scenario set, worst losses held to the Decimal reference."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine import stress
from margin.engine.errors import EngineInputError
from margin.engine.reference import quote_account
from margin.engine.stress import (
    ScenarioSet,
    account_stress,
    build_scenarios,
    cholesky_with_jitter,
    decimal_shocks,
    ewma_covariance,
    scenario_loss,
    stress_margin,
)
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import FLOOR_FRACTION, account_size
from tests.engine.strategies import books
from tests.engine.support import close


def test_ewma_of_constant_moves_is_that_move():
    # Log returns of ±1% every day: every weighted average of r² is 1e-4.
    steps = np.where(np.arange(60) % 2 == 0, 0.01, -0.01)
    prices = 100 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))[:, None]
    vol, cov = ewma_covariance(prices)
    assert vol[0] == pytest.approx(0.01, rel=1e-12)
    assert cov.shape == (1, 1)


def test_ewma_weights_decay_by_lambda_from_the_latest_return():
    rng = np.random.default_rng(3)
    prices = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 3)), axis=0))
    lam = 0.9
    returns = np.diff(np.log(prices), axis=0)
    weights = np.array([lam ** (len(returns) - 1 - t) for t in range(len(returns))])
    expected = sum(
        w * np.outer(r, r) for w, r in zip(weights / weights.sum(), returns, strict=True)
    )
    vol, cov = ewma_covariance(prices, lam=lam)
    np.testing.assert_allclose(cov, expected, rtol=1e-12)
    np.testing.assert_allclose(vol, np.sqrt(np.diag(expected)), rtol=1e-12)


@pytest.mark.parametrize(
    ("prices", "lam"),
    [(np.ones((1, 2)), 0.94), (np.array([[1.0], [0.0]]), 0.94), (np.ones((5, 2)), 1.0)],
)
def test_ewma_refuses_what_it_cannot_use(prices, lam):
    with pytest.raises(EngineInputError):
        ewma_covariance(prices, lam=lam)


def test_scenarios_move_each_asset_alone_then_jointly_k_sigmas_away():
    vol = np.array([0.02, 0.05, 0.03])
    correlation = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    cov = correlation * np.outer(vol, vol)
    scenarios = build_scenarios(
        vol, cov, k=2.5, horizon=4.0, n_correlated=20, seed=11, asset_names=("A", "B", "C")
    )
    assert scenarios.price_shocks.shape == (2 * 3 + 2 * 20, 3) == scenarios.vol_shocks.shape
    assert not scenarios.vol_shocks.any()
    assert scenarios.names[:2] == ("A +2.5σ", "A −2.5σ")
    log_moves = np.log1p(scenarios.price_shocks)
    alone = log_moves[:6]
    np.testing.assert_allclose(alone[0], [2.5 * 2 * 0.02, 0, 0])
    np.testing.assert_allclose(alone[3], [0, -2.5 * 2 * 0.05, 0])
    joint = log_moves[6:]
    distances = np.einsum("ij,jk,ik->i", joint, np.linalg.inv(cov), joint)
    np.testing.assert_allclose(distances, (2.5 * 2) ** 2, rtol=1e-9)
    np.testing.assert_allclose(joint[1::2], -joint[0::2])
    again = build_scenarios(vol, cov, k=2.5, horizon=4.0, n_correlated=20, seed=11)
    np.testing.assert_array_equal(again.price_shocks, scenarios.price_shocks)
    other = build_scenarios(vol, cov, k=2.5, horizon=4.0, n_correlated=20, seed=12)
    assert not np.array_equal(other.price_shocks, scenarios.price_shocks)


def test_a_covariance_that_is_not_positive_definite_factors_with_jitter():
    vol = np.array([0.03, 0.03, 0.0])
    cov = np.outer(vol, vol)  # two assets moving as one and one that never moves
    factor = cholesky_with_jitter(cov)
    np.testing.assert_allclose(factor @ factor.T, cov, atol=1e-6 * cov.max())
    scenarios = build_scenarios(vol, cov, n_correlated=10)
    assert np.all(np.isfinite(scenarios.price_shocks))


def test_scenario_set_checks_its_shapes():
    with pytest.raises(EngineInputError):
        ScenarioSet(price_shocks=np.zeros((2, 3)), vol_shocks=np.zeros((2, 2)), names=("a", "b"))
    with pytest.raises(EngineInputError):
        ScenarioSet(
            price_shocks=np.full((1, 1), -1.0), vol_shocks=np.zeros((1, 1)), names=("crash",)
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(max_accounts=4), st.integers(0, 2**32 - 1))
def test_worst_loss_matches_the_decimal_reference(market_and_accounts, seed):
    _, accounts = market_and_accounts
    book, marks, prices = book_from_accounts(accounts)
    shocks = np.random.default_rng(seed).uniform(-0.4, 0.4, (7, len(prices)))
    scenarios = ScenarioSet(
        price_shocks=shocks,
        vol_shocks=np.zeros_like(shocks),
        names=tuple(f"s{n}" for n in range(7)),
        asset_names=book.asset_names,
    )
    result = stress_margin(book, marks, prices, scenarios)
    for a, account in enumerate(accounts):
        reference = account_stress(account, decimal_shocks(scenarios))
        floor = FLOOR_FRACTION * account_size(account)
        assert reference.worst_loss == max(Decimal(0), *reference.scenario_losses)
        assert close(result.worst_loss[a], reference.worst_loss, scale=floor)
        if result.worst_scenario[a] >= 0:
            chosen = reference.scenario_losses[result.worst_scenario[a]]
            assert close(chosen, reference.worst_loss, scale=floor)
        assert close(result.maintenance_margin[a], reference.maintenance_margin, scale=floor)
        assert close(result.risk_requirement[a], reference.risk_requirement, scale=floor)
        assert reference.maintenance_margin == quote_account(account).maintenance_margin


def test_a_scenario_loss_is_minus_the_exposures_moved():
    exposures = {"BTC": Decimal("100000"), "USDT": Decimal("-20000")}
    shocks = {"BTC": Decimal("-0.1"), "ETH": Decimal("0.5")}
    assert scenario_loss(exposures, shocks) == Decimal("10000.0")


def test_blocks_and_threads_change_nothing(monkeypatch):
    from margin.engine.bench import random_book

    demo = random_book(4000, 700, seed=5)
    vol, cov = ewma_covariance(demo.price_history)
    scenarios = build_scenarios(vol, cov, n_correlated=30, asset_names=demo.book.asset_names)
    revaluation = revalue(demo.book, demo.marks, demo.asset_prices)
    whole = stress_margin(
        demo.book, demo.marks, demo.asset_prices, scenarios, revaluation=revaluation, workers=1
    )
    monkeypatch.setattr(stress, "SERIAL_PRODUCT_WORK", 5000)
    blocked = stress_margin(
        demo.book, demo.marks, demo.asset_prices, scenarios, revaluation=revaluation, workers=2
    )
    for name in ("worst_loss", "worst_scenario", "risk_requirement", "maintenance_margin"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))
    assert (whole.worst_scenario >= 0).mean() > 0.9
    assert np.all(whole.risk_requirement >= whole.maintenance_margin)

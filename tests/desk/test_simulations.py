"""The desk's stress and cascade figures equal the Decimal reference engine's, account by
account, on small random books (no database: the simulations are pure functions)."""

from decimal import Decimal

import numpy as np
import pytest

from margin.engine.book_stress import stress_book
from margin.engine.cascade import simulate_cascade
from margin.engine.reference import quote_account
from margin.engine.shocks import correlated_crash, depeg, replay_moves, uniform_shock
from margin.engine.vector import book_from_accounts
from tests.desk.books import PRICES, at_prices, random_accounts

REL = 1e-9


def reference_damage(account, prices):
    """Under maintenance, maintenance shortfall and negative equity of one account by the
    reference: its cross pool and each isolated position on its own margin."""
    quote = quote_account(at_prices(account, prices))
    under = quote.maintenance_margin > 0 and quote.maintenance_margin >= quote.margin_balance
    shortfall = quote.maintenance_margin - quote.margin_balance if under else Decimal(0)
    deficit = max(Decimal(0), -quote.margin_balance)
    closed = {p.id for p in account.positions if not p.is_isolated} if under else set()
    for position in quote.positions:
        if position.margin_mode != "isolated":
            continue
        equity = position.isolated_margin + position.unrealized_pnl
        deficit += max(Decimal(0), -equity)
        if position.maintenance_margin > 0 and position.maintenance_margin >= equity:
            under = True
            shortfall += position.maintenance_margin - equity
            closed.add(position.id)
    return under, shortfall, deficit, closed, quote


def shocked(book, asset_prices, moves) -> dict[str, Decimal]:
    return {
        name: Decimal(float(asset_prices[i]) * (1.0 + float(moves[i])))
        for i, name in enumerate(book.asset_names)
    }


def assert_close(vector: float, reference: Decimal) -> None:
    assert vector == pytest.approx(float(reference), rel=REL, abs=1e-6)


@pytest.mark.parametrize(
    "scenario",
    ["uniform_down", "uniform_up", "depeg", "correlated", "replay_worst"],
)
def test_stress_scenario_matches_the_reference_account_by_account(scenario):
    # given
    accounts = random_accounts(60, seed=7)
    book, marks, asset_prices = book_from_accounts(accounts)
    n, usdt = len(book.asset_names), book.asset_names.index("USDT")
    covariance = np.array([[0.0, 0, 0], [0, 0.0016, 0.0018], [0, 0.0018, 0.0025]])
    order = [("USDT", "BTC", "ETH").index(name) for name in book.asset_names]
    path = np.array([[1, 60000, 3000], [1, 52000, 2500], [1, 45000, 2300]], dtype=float)
    moves = {
        "uniform_down": uniform_shock(n, -0.2, held=[usdt]),
        "uniform_up": uniform_shock(n, 0.25, held=[usdt]),
        "depeg": depeg(n, usdt, -0.15),
        "correlated": correlated_crash(covariance[np.ix_(order, order)], 4.0),
        "replay_worst": replay_moves(path[:, order])[-1],
    }[scenario]
    # when
    result = stress_book(book, marks, asset_prices, moves, insurance_fund=50_000.0)
    # then
    damage = [reference_damage(a, shocked(book, asset_prices, moves)) for a in accounts]
    expected_under = [i for i, d in enumerate(damage) if d[0]]
    assert result.accounts_under_maintenance == len(expected_under)
    assert 0 < len(expected_under) < len(accounts) or scenario == "uniform_up"
    assert set(result.worst_accounts) <= set(expected_under)
    assert_close(result.maintenance_shortfall, sum(d[1] for d in damage))
    assert_close(result.deficit, sum(d[2] for d in damage))
    if result.deficit > 0:
        assert result.coverage == pytest.approx(50_000.0 / result.deficit)


def test_correlated_crash_moves_correlated_assets_down_together():
    covariance = np.array([[0.0016, 0.0018], [0.0018, 0.0025]])
    moves = correlated_crash(covariance, 3.0)
    assert (moves < 0).all()
    # the factor carries the whole variance along its direction: |move| = k √λ₁
    assert np.linalg.norm(moves) == pytest.approx(3.0 * np.sqrt(np.linalg.eigvalsh(covariance)[-1]))


def reference_cascade(accounts, book, prices, depth_by_asset, max_rounds, fund):
    """The cascade rule replayed with the reference engine on each account."""
    remaining = list(accounts)
    rounds = []
    for _ in range(max_rounds):
        hit_accounts, sold, deficit = [], dict.fromkeys(prices, 0.0), Decimal(0)
        for index, account in enumerate(remaining):
            _, _, _, closed, quote = reference_damage(account, prices)
            if not closed:
                continue
            hit_accounts.append(index)
            for position, figures in zip(account.positions, quote.positions, strict=True):
                if position.id in closed:
                    sold[position.underlying] += position.side * float(figures.notional)
            pool_hit = any(not p.is_isolated for p in account.positions if p.id in closed)
            if pool_hit:
                deficit += max(Decimal(0), -quote.margin_balance)
            for position in quote.positions:
                if position.id in closed and position.margin_mode == "isolated":
                    deficit += max(
                        Decimal(0), -(position.isolated_margin + position.unrealized_pnl)
                    )
            remaining[index] = type(account)(
                collateral=account.collateral,
                positions=tuple(p for p in account.positions if p.id not in closed),
                credit_tier=account.credit_tier,
            )
        used = min(fund, float(deficit))
        fund -= used
        prices = {
            asset: Decimal(
                float(price) * (1.0 + max(-0.01 * sold[asset] / depth_by_asset[asset], -0.99))
                if depth_by_asset[asset]
                else float(price)
            )
            for asset, price in prices.items()
        }
        rounds.append((hit_accounts, prices, used))
        if not hit_accounts:
            break
    return rounds


def test_cascade_rounds_match_the_reference_replayed_round_by_round():
    # given: a 10 % crash and a thin market, so that liquidations push prices further
    accounts = random_accounts(80, seed=11)
    book, marks, asset_prices = book_from_accounts(accounts)
    usdt = book.asset_names.index("USDT")
    moves = uniform_shock(len(book.asset_names), -0.10, held=[usdt])
    depth_by_asset = {"USDT": 0.0, "BTC": 400_000.0, "ETH": 150_000.0}
    depth = np.array([depth_by_asset[name] for name in book.asset_names])
    seen = []
    # when
    result = simulate_cascade(
        book,
        marks,
        asset_prices,
        moves,
        depth=depth,
        max_rounds=8,
        insurance_fund=20_000.0,
        on_round=seen.append,
    )
    # then
    expected = reference_cascade(
        accounts, book, shocked(book, asset_prices, moves), depth_by_asset, 8, 20_000.0
    )
    assert len(result.rounds) == len(expected) >= 3
    assert seen == list(result.rounds)
    for found, (accounts_hit, prices, used) in zip(result.rounds, expected, strict=True):
        assert list(found.liquidated_accounts) == accounts_hit
        for name, price in prices.items():
            assert_close(found.asset_prices[book.asset_names.index(name)], price)
        assert found.insurance_used == pytest.approx(used, rel=REL, abs=1e-6)
    btc = book.asset_names.index("BTC")
    assert result.rounds[-1].asset_prices[btc] < float(PRICES["BTC"]) * 0.9
    starts = [r.prices_before for r in result.rounds]
    assert starts[1:] == [r.asset_prices for r in result.rounds[:-1]]
    assert starts[0][btc] == pytest.approx(float(PRICES["BTC"]) * 0.9)


def test_cascade_stops_when_a_round_liquidates_nothing():
    accounts = random_accounts(30, seed=3)
    book, marks, asset_prices = book_from_accounts(accounts)
    result = simulate_cascade(
        book,
        marks,
        asset_prices,
        np.zeros(len(book.asset_names)),
        depth=np.zeros(len(book.asset_names)),
        max_rounds=10,
        insurance_fund=0.0,
    )
    assert [r.accounts_liquidated for r in result.rounds][-1] == 0
    assert len(result.rounds) <= 2

"""Liquidity add-on (square-root impact) and per-owner haircut tiers."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from margin.engine.errors import EngineInputError
from margin.engine.liquidity import (
    impact_cost,
    impact_costs,
    liquidity_haircut,
)
from margin.engine.reference import collateral_line_value, owner_collateral_values
from margin.engine.types import CollateralLine, HaircutTier
from tests.engine.strategies import decimals
from tests.engine.support import close

# The seeded BTC collateral tiers: 95% to 1M, 90% to 5M, 80% above.
BTC_TIERS = (
    HaircutTier(Decimal(0), Decimal("0.95")),
    HaircutTier(Decimal(1_000_000), Decimal("0.9")),
    HaircutTier(Decimal(5_000_000), Decimal("0.8")),
)


def btc(quantity: str) -> CollateralLine:
    return CollateralLine("BTC", Decimal(quantity), Decimal(100_000), BTC_TIERS)


def test_impact_cost_by_hand():
    # given 1M of notional in a market trading 100M over the horizon at σ = 4%
    # when  the cost of closing it is taken
    cost = impact_cost(Decimal(1_000_000), Decimal(100_000_000), Decimal("0.04"))
    # then  1M × 1 × 0.04 × √(0.01) = 4,000
    assert cost == Decimal(4000)


def test_impact_cost_refuses_no_market():
    with pytest.raises(EngineInputError, match="depth"):
        impact_cost(Decimal(1), Decimal(0), Decimal("0.04"))


@given(
    small=decimals("1", "1000000", 2),
    extra=decimals("0.01", "1000000", 2),
    depth=decimals("1000", "1000000000", 0),
    sigma=decimals("0.001", "0.5", 4),
)
def test_add_on_grows_faster_than_size(small, extra, depth, sigma):
    # The add-on's rate (cost per unit of notional) never falls as a position grows: splitting
    # the add-on by size would otherwise reward the largest positions.
    large = small + extra
    assert impact_cost(large, depth, sigma) / large >= impact_cost(small, depth, sigma) / small


@given(
    notionals=st.lists(decimals("0", "50000000", 2), min_size=1, max_size=20),
    depth=decimals("1000", "1000000000", 0),
    sigma=decimals("0.001", "0.5", 4),
)
def test_vectorized_cost_equals_reference(notionals, depth, sigma):
    vector = impact_costs(np.array([float(n) for n in notionals]), float(depth), float(sigma))
    for n, notional in enumerate(notionals):
        assert close(vector[n], impact_cost(notional, depth, sigma))


def test_collateral_far_beyond_its_market_is_worth_little():
    assert liquidity_haircut(Decimal(1000), Decimal(100_000_000), Decimal("0.04")) < Decimal(
        "0.0002"
    )
    assert liquidity_haircut(Decimal(10**12), Decimal(10**6), Decimal("0.04")) == 1
    assert liquidity_haircut(Decimal(-5000), Decimal(10**6), Decimal("0.04")) == 0


def test_splitting_five_million_of_btc_gains_nothing():
    # given one owner's 5M USD of BTC, in one account or split over five
    whole = collateral_line_value(btc("50"), Decimal(1))
    per_account_today = sum(collateral_line_value(btc("10"), Decimal(1)) for _ in range(5))
    # when  the tiers apply to what the owner holds across the accounts
    split = owner_collateral_values([btc("10")] * 5)
    # then  one account counts 1M × 0.95 + 4M × 0.9 = 4.55M; split per account it was 4.75M;
    #       per owner each of the five gets a fifth of 4.55M
    assert whole == Decimal(4_550_000)
    assert per_account_today == Decimal(4_750_000)
    assert split == [Decimal(910_000)] * 5
    assert sum(split) == whole


def test_a_liability_stays_whole_in_its_account():
    values = owner_collateral_values([btc("30"), btc("-1"), btc("20")])
    assert values[1] == Decimal(-100_000)
    assert values[0] + values[2] == collateral_line_value(btc("50"), Decimal(1))


def test_holdings_of_different_assets_are_refused():
    eth = CollateralLine("ETH", Decimal(1), Decimal(3000), ())
    with pytest.raises(EngineInputError, match=r"holdings\[1\]"):
        owner_collateral_values([btc("1"), eth])

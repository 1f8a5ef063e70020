"""Liquidation plans: after applying one, the reference finds the account back under target."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine.errors import EngineInputError
from margin.engine.liquidation import (
    account_after,
    apply_plan,
    liquidation_plan,
    lower_tier_plan,
)
from margin.engine.reference import quote_account
from margin.engine.types import AccountInput
from tests.engine.strategies import accounts, decimals, markets
from tests.engine.support import btc_perp, usdt

SLIPPAGE = Decimal("0.005")
TARGET = Decimal("0.3")


def assert_back_under_target(account: AccountInput, target: Decimal, slippage: Decimal) -> None:
    plan = liquidation_plan(account, target_ratio=target, slippage=slippage)
    after = quote_account(apply_plan(account, plan))
    cross_left = [row for row in after.positions if row.margin_mode == "cross"]
    assert (after.margin_ratio is not None and after.margin_ratio <= target) or not cross_left
    assert plan.margin_ratio_after == after.margin_ratio
    assert plan.reaches_target == (after.margin_ratio is not None and after.margin_ratio <= target)
    assert plan.insurance_fund_cost >= 0


def test_a_large_position_is_reduced_just_enough_and_its_bracket_steps_down():
    # 40 BTC at 60,000 is 2.4M notional, bracket 3 (0.65%); the account is past liquidation.
    account = AccountInput(
        collateral=(usdt("70000"),), positions=(btc_perp("BTC", quantity="40", entry="61500"),)
    )
    before = quote_account(account)
    assert before.margin_ratio >= 1
    slippage = Decimal("0.001")
    # At 30% the remaining notional must fall under the 600,000 floor: bracket 2 (0.5%).
    plan = liquidation_plan(account, target_ratio=TARGET, slippage=slippage)
    (step,) = plan.steps
    assert 0 < step.quantity < 40
    assert step.execution_price == Decimal(60000) * (1 - slippage)
    assert step.slippage_loss == step.quantity * Decimal(60000) * slippage
    after = quote_account(apply_plan(account, plan))
    assert after.positions[0].bracket < before.positions[0].bracket
    assert TARGET - Decimal("1e-6") < after.margin_ratio <= TARGET
    # One lot less would leave the ratio above the target: the reduction is the least that works.
    lot = Decimal("1e-8")
    short_of_it = account_after(account, {"BTC": step.quantity - lot}, slippage=slippage)
    assert quote_account(short_of_it).margin_ratio > TARGET


def test_a_position_in_a_high_tier_is_cut_to_the_top_of_the_lower_tier():
    # Bybit's liquidation process: from the second tier up, first a FillOrKill order down to the
    # lower tier's value when that meets the requirement. 80 BTC at 60,000 is 4.8M notional,
    # bracket 4 (1%): MM 36,550 on a balance of 36,500.
    account = AccountInput(collateral=(usdt("36500"),), positions=(btc_perp("BTC", quantity="80"),))
    assert quote_account(account).margin_ratio > 1
    plan = lower_tier_plan(account, threshold=Decimal("0.95"), slippage=Decimal("0.007"))
    (step,) = plan.steps
    after = quote_account(apply_plan(account, plan))
    (row,) = after.positions
    assert row.bracket == 3
    assert 3_000_000 - 60000 * Decimal("1e-8") <= row.notional < 3_000_000
    assert step.remaining_quantity == Decimal("49.99999999")
    # MM falls by 1% of the 1.8M sold (MM is continuous at the floor), the balance by 0.7%
    assert plan.margin_ratio_after == after.margin_ratio < Decimal("0.78")
    assert plan.reaches_target


def test_the_lowest_tier_or_a_cut_that_does_not_restore_the_pool_has_no_tier_step():
    # 1 BTC (tier 1) past its line; 1M notional in tier 3 (0.65%) where a unit sold frees less
    # margin than it costs at 0.7%
    tier_one = AccountInput(collateral=(usdt("200"),), positions=(btc_perp("BTC", quantity="1"),))
    tier_three = AccountInput(
        collateral=(usdt("5400"),), positions=(btc_perp("BTC", quantity="16.66"),)
    )
    for account in (tier_one, tier_three):
        assert quote_account(account).margin_ratio > 1
        assert (
            lower_tier_plan(account, threshold=Decimal("0.95"), slippage=Decimal("0.007")) is None
        )


def test_largest_maintenance_margin_goes_first():
    account = AccountInput(
        collateral=(usdt("9000"),),
        positions=(
            btc_perp("small", quantity="1", entry="64000"),
            btc_perp("large", side=-1, quantity="8", entry="57000"),
            btc_perp("middle", quantity="3", entry="62000"),
        ),
    )
    plan = liquidation_plan(account, target_ratio=Decimal("0.2"), slippage=SLIPPAGE)
    assert [step.position_id for step in plan.steps][:2] == ["large", "middle"]
    assert_back_under_target(account, Decimal("0.2"), SLIPPAGE)


def test_a_bankrupt_account_is_closed_whole_and_the_insurance_fund_pays_the_rest():
    account = AccountInput(
        collateral=(usdt("1000"),), positions=(btc_perp("BTC", quantity="2", entry="70000"),)
    )
    plan = liquidation_plan(account, target_ratio=Decimal("0.8"), slippage=SLIPPAGE)
    assert [(s.position_id, s.quantity, s.remaining_quantity) for s in plan.steps] == [
        ("BTC", 2, 0)
    ]
    equity = Decimal(1000) + 2 * (Decimal(60000) - 70000) - 2 * Decimal(60000) * SLIPPAGE
    assert plan.equity_after_full_close == equity
    assert plan.insurance_fund_cost == -equity
    assert plan.bankruptcy_prices == {"BTC": quote_account(account).positions[0].bankruptcy_price}
    assert not plan.reaches_target


def test_an_account_under_target_needs_nothing():
    account = AccountInput(
        collateral=(usdt("100000"),), positions=(btc_perp("BTC", quantity="1", entry="60000"),)
    )
    plan = liquidation_plan(account, target_ratio=Decimal("0.8"), slippage=SLIPPAGE)
    assert plan.steps == () and plan.reaches_target and plan.insurance_fund_cost == 0


@pytest.mark.parametrize(
    ("target", "slippage"),
    [(Decimal(0), SLIPPAGE), (Decimal("1.5"), SLIPPAGE), (Decimal("0.8"), Decimal(1))],
)
def test_plan_refuses_meaningless_parameters(target, slippage):
    with pytest.raises(EngineInputError):
        liquidation_plan(AccountInput(), target_ratio=target, slippage=slippage)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from([Decimal("0.3"), Decimal("0.8"), Decimal(1)]),
    decimals("0", "0.02", 4),
)
def test_random_accounts_end_under_target_or_closed(data, target, slippage):
    market = data.draw(markets())
    assert_back_under_target(data.draw(accounts(market)), target, slippage)

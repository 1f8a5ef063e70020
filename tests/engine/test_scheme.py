"""Margin schemes: standard (tiered MM) and portfolio (max(tiered MM, stress loss)), the
figures they drive, both faces held equal."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine.errors import EngineInputError
from margin.engine.reference import quote_account
from margin.engine.scheme import (
    PORTFOLIO,
    STANDARD,
    STRESS,
    TIERED,
    account_requirement,
    explain_requirement,
    maintenance_requirement,
    scheme_figures,
)
from margin.engine.stress import StressModel, account_stress, stress_margin
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import FLOOR_FRACTION, account_size
from tests.engine.strategies import books
from tests.engine.support import close
from tests.engine.test_explain import assert_steps_add_up

MARGIN_CALL = Decimal("0.8")


def test_standard_is_the_tiered_mm_whatever_the_stress():
    assert maintenance_requirement(
        scheme=STANDARD, tiered_maintenance=Decimal(100), stress_loss=Decimal(900)
    ) == (Decimal(100), TIERED)


def test_portfolio_charges_the_larger_and_names_it():
    assert maintenance_requirement(
        scheme=PORTFOLIO, tiered_maintenance=Decimal(100), stress_loss=Decimal(900)
    ) == (Decimal(900), STRESS)
    assert maintenance_requirement(
        scheme=PORTFOLIO, tiered_maintenance=Decimal(100), stress_loss=Decimal(40)
    ) == (Decimal(100), TIERED)


def test_portfolio_without_a_stress_loss_is_refused_not_waved_through():
    with pytest.raises(EngineInputError):
        maintenance_requirement(scheme=PORTFOLIO, tiered_maintenance=Decimal(100), stress_loss=None)
    with pytest.raises(EngineInputError):
        maintenance_requirement(scheme="grid", tiered_maintenance=Decimal(1), stress_loss=None)


def test_the_stress_term_drives_ratio_initial_and_withdrawable():
    # 10,000 collateral, no PnL, tiered MM 200 and IM 1,000; the stress loss is 4,000.
    requirement = account_requirement(
        scheme=PORTFOLIO,
        collateral_value=Decimal(10_000),
        unrealized_pnl=Decimal(0),
        margin_balance=Decimal(10_000),
        tiered_maintenance=Decimal(200),
        tiered_initial=Decimal(1_000),
        stress_loss=Decimal(4_000),
        margin_call_ratio=MARGIN_CALL,
    )
    assert requirement.maintenance == 4_000 and requirement.binding == STRESS
    assert requirement.margin_ratio == Decimal("0.4")
    assert requirement.initial == 5_000  # 4,000 / 0.8: MM is 80 % of IM
    assert requirement.withdrawable == 5_000
    standard = account_requirement(
        scheme=STANDARD,
        collateral_value=Decimal(10_000),
        unrealized_pnl=Decimal(0),
        margin_balance=Decimal(10_000),
        tiered_maintenance=Decimal(200),
        tiered_initial=Decimal(1_000),
        stress_loss=Decimal(4_000),
        margin_call_ratio=MARGIN_CALL,
    )
    assert standard.withdrawable == 9_000 and standard.margin_ratio == Decimal("0.02")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(max_accounts=4), st.integers(0, 2**32 - 1))
def test_vector_scheme_figures_match_the_reference(market_and_accounts, seed):
    _, accounts = market_and_accounts
    book, marks, prices = book_from_accounts(accounts)
    rng = np.random.default_rng(seed)
    model = StressModel.build(
        book.asset_names,
        rng.uniform(0.001, 0.1, book.n_assets),
        k=float(rng.uniform(1, 5)),
    )
    portfolio = rng.random(book.n_accounts) < 0.5
    revaluation = revalue(book, marks, prices, liquidation_prices=False)
    stress = stress_margin(book, marks, prices, model, revaluation=revaluation)
    figures = scheme_figures(revaluation, stress.worst_loss, portfolio, margin_call_ratio=0.8)
    for a, account in enumerate(accounts):
        quote = quote_account(account)
        reference = account_requirement(
            scheme=PORTFOLIO if portfolio[a] else STANDARD,
            collateral_value=quote.collateral_value,
            unrealized_pnl=quote.unrealized_pnl,
            margin_balance=quote.margin_balance,
            tiered_maintenance=quote.maintenance_margin,
            tiered_initial=quote.initial_margin,
            stress_loss=account_stress(account, model, quote=quote).worst_loss,
            margin_call_ratio=MARGIN_CALL,
        )
        floor = FLOOR_FRACTION * account_size(account)
        assert close(figures.maintenance[a], reference.maintenance, scale=floor)
        assert close(figures.initial[a], reference.initial, scale=floor)
        assert close(figures.withdrawable[a], reference.withdrawable, scale=floor)
        if abs(quote.margin_balance) > Decimal(1e-6 * floor):
            assert close(figures.margin_ratio[a], reference.margin_ratio, scale=floor)


@pytest.mark.parametrize(
    ("stress_loss", "binds"), [(Decimal(4_000), STRESS), (Decimal(50), TIERED)]
)
def test_the_explain_names_the_binding_term_and_its_steps_add_up(stress_loss, binds):
    requirement = account_requirement(
        scheme=PORTFOLIO,
        collateral_value=Decimal(10_000),
        unrealized_pnl=Decimal(-300),
        margin_balance=Decimal(9_700),
        tiered_maintenance=Decimal(200),
        tiered_initial=Decimal(1_000),
        stress_loss=stress_loss,
        margin_call_ratio=MARGIN_CALL,
    )
    steps = explain_requirement(requirement, MARGIN_CALL)
    (step,) = steps["account.requirement"]
    assert f"the {'stress loss' if binds == STRESS else 'tiered MM'} binds" in step.figure
    assert set(steps) == {
        "account.requirement",
        "account.margin_ratio",
        "account.initial_margin",
        "account.withdrawable",
    }
    assert assert_steps_add_up(steps) == 8  # 1 + 2 + 2 + 3 steps, each checked
    standard = account_requirement(
        scheme=STANDARD,
        collateral_value=Decimal(10_000),
        unrealized_pnl=Decimal(0),
        margin_balance=Decimal(10_000),
        tiered_maintenance=Decimal(200),
        tiered_initial=Decimal(1_000),
        stress_loss=None,
        margin_call_ratio=MARGIN_CALL,
    )
    (step,) = explain_requirement(standard, MARGIN_CALL)["account.requirement"]
    assert "tiered MM binds" in step.figure and step.result == 200

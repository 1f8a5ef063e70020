"""Margin schemes: standard (tiered MM) and portfolio (max(tiered MM, stress loss)), the
figures they drive, both faces held equal."""

from dataclasses import replace
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
    explain_portfolio_liquidation,
    explain_requirement,
    maintenance_requirement,
    portfolio_liquidation_price,
    scheme_figures,
)
from margin.engine.stress import StressModel, account_stress, stress_margin
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import FLOOR_FRACTION, account_size
from tests.engine.strategies import books
from tests.engine.support import btc_perp, close, usdt
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


@pytest.mark.parametrize(("sigma", "binds"), [(0.03, STRESS), (0.0001, TIERED)])
def test_portfolio_liquidation_price_is_where_the_balance_meets_the_larger_term(sigma, binds):
    # given: 12,000 USDT behind a 1 BTC long at 60,000 (tiered price about 48,240); BTC's σ
    # per day large (the stress loss binds) or tiny (the tiered MM binds)
    account = AccountInput(collateral=(usdt("12000"),), positions=(btc_perp(),))
    model = StressModel.build(("BTC", "USDT"), np.array([sigma, 0.0005]), k=3.0)
    tiered = quote_account(account).positions[0].liquidation_price
    # when
    found = portfolio_liquidation_price(account, model, account.positions[0], tiered)
    # then: the balance meets max(tiered MM, stress loss) there, and the term is named
    assert found.binding == binds
    assert found.margin_balance == pytest.approx(
        max(found.tiered_maintenance, found.stress_loss), rel=Decimal("1e-8")
    )
    if binds == STRESS:
        # 3σ of a 1 BTC exposure is 9 % of the price: the account goes well before the tiered
        # line, and the explain says why
        assert found.price > tiered + 1000
        steps = explain_portfolio_liquidation(found, tiered, "BTC")
        assert "the stress loss binds" in steps[-1].figure
        assert steps[-1].result == found.price
    else:
        assert found.price == pytest.approx(tiered, rel=Decimal("1e-8"))
    # a hair above the found price the account stands clear, a hair below it does not
    for factor, clear in ((Decimal("1.0001"), True), (Decimal("0.9999"), False)):
        moved = replace(
            account,
            positions=(replace(account.positions[0], mark_price=found.price * factor),),
        )
        quote = quote_account(moved)
        requirement, _ = maintenance_requirement(
            scheme=PORTFOLIO,
            tiered_maintenance=quote.maintenance_margin,
            stress_loss=account_stress(moved, model, quote=quote).worst_loss,
        )
        assert (quote.margin_balance > requirement) is clear


def test_portfolio_liquidation_price_of_an_account_past_it_is_the_mark():
    account = AccountInput(collateral=(usdt("700"),), positions=(btc_perp(),))
    model = StressModel.build(("BTC", "USDT"), np.array([0.03, 0.0005]), k=3.0)
    found = portfolio_liquidation_price(account, model, account.positions[0], None)
    assert found.price == Decimal(60000) and found.binding == STRESS

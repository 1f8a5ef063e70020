"""The options grid in the margin schemes: an account holding options answers for
max(tiered MM, [stress loss under the portfolio scheme], grid MM), both faces held equal."""

from decimal import Decimal

import numpy as np
from hypothesis import given, settings

from margin.engine.options_vector import (
    option_book_from_accounts,
    portfolio_grid,
)
from margin.engine.reference import quote_account
from margin.engine.scheme import (
    GRID,
    PORTFOLIO,
    STANDARD,
    STRESS,
    TIERED,
    account_requirement,
    explain_requirement,
    maintenance_requirement,
    scheme_figures,
)
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.support import close
from tests.engine.test_explain import assert_steps_add_up
from tests.engine.test_options_vector import option_books

MARGIN_CALL = Decimal("0.8")


def test_the_grid_joins_either_scheme_and_binds_when_largest():
    tiered, stress, grid = Decimal(100), Decimal(900), Decimal(2500)
    assert maintenance_requirement(
        scheme=STANDARD, tiered_maintenance=tiered, stress_loss=stress, grid_maintenance=grid
    ) == (grid, GRID)
    assert maintenance_requirement(
        scheme=PORTFOLIO, tiered_maintenance=tiered, stress_loss=stress, grid_maintenance=grid
    ) == (grid, GRID)
    assert maintenance_requirement(
        scheme=PORTFOLIO, tiered_maintenance=tiered, stress_loss=stress, grid_maintenance=tiered
    ) == (stress, STRESS)
    # The tiered MM stays a floor under the grid.
    assert maintenance_requirement(
        scheme=STANDARD,
        tiered_maintenance=tiered,
        stress_loss=None,
        grid_maintenance=Decimal(50),
    ) == (tiered, TIERED)


def test_the_grid_initial_margin_floors_the_initial_requirement_and_is_explained():
    requirement = account_requirement(
        scheme=STANDARD,
        collateral_value=Decimal(10_000),
        unrealized_pnl=Decimal(-500),
        margin_balance=Decimal(9_500),
        tiered_maintenance=Decimal(200),
        tiered_initial=Decimal(1_000),
        stress_loss=None,
        margin_call_ratio=MARGIN_CALL,
        grid_maintenance=Decimal(1_500),
        grid_initial=Decimal(3_000),
    )
    assert (requirement.maintenance, requirement.binding) == (Decimal(1_500), GRID)
    assert requirement.initial == Decimal(3_000)
    assert requirement.withdrawable == Decimal(10_000 - 500 - 3_000)
    assert close(requirement.margin_ratio, Decimal(1_500) / Decimal(9_500))
    steps = explain_requirement(requirement, MARGIN_CALL)
    assert "options grid binds" in steps["account.requirement"][0].figure
    assert_steps_add_up(steps)


@settings(max_examples=30, deadline=None)
@given(option_books())
def test_scheme_figures_with_the_grid_match_the_reference(books):
    book, marks, prices = book_from_accounts(books)
    option_book, market = option_book_from_accounts(books, book)
    revaluation = revalue(book, marks, prices)
    grid = portfolio_grid(option_book, marks, market.forwards, market.vols)
    # A made-up stress loss per account: the scheme's max is what is tested here.
    stress = np.array([100.0 * (a + 1) for a in range(len(books))])
    portfolio = np.array([a.margin_scheme == PORTFOLIO for a in books])
    figures = scheme_figures(
        revaluation, stress, portfolio, margin_call_ratio=float(MARGIN_CALL), grid=grid
    )
    for a, account in enumerate(books):
        quote = quote_account(account)
        holds = bool(account.options)
        tiered_mm = quote.tiered_maintenance_margin if quote.portfolio else quote.maintenance_margin
        tiered_im = quote.tiered_initial_margin if quote.portfolio else quote.initial_margin
        requirement = account_requirement(
            scheme=account.margin_scheme,
            collateral_value=quote.collateral_value,
            unrealized_pnl=quote.unrealized_pnl,
            margin_balance=quote.margin_balance,
            tiered_maintenance=tiered_mm,
            tiered_initial=tiered_im,
            stress_loss=Decimal(repr(float(stress[a]))),
            margin_call_ratio=MARGIN_CALL,
            grid_maintenance=quote.portfolio.maintenance_margin if holds else None,
            grid_initial=quote.portfolio.initial_margin if holds else None,
        )
        scale = 1e-4 * (1 + float(abs(quote.margin_balance) + requirement.maintenance))
        scale += 1e-4 * sum(float(o.quantity * o.underlying_price) * 6 for o in account.options)
        assert close(figures.maintenance[a], requirement.maintenance, scale=scale), a
        assert close(figures.initial[a], requirement.initial, scale=scale), a
        assert close(figures.withdrawable[a], requirement.withdrawable, scale=scale), a
        assert bool(figures.grid_binds[a]) == (requirement.binding == GRID) or close(
            float(quote.portfolio.maintenance_margin) if holds else 0.0,
            max(requirement.maintenance, Decimal(0)),
            scale=scale,
        )

"""The vectorized engine says what the Decimal reference says, on random books and on the
cases that matter most."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from margin.engine.reference import (
    linked_move,
    maintenance_margin,
    quote_account,
    unrealized_pnl,
)
from margin.engine.types import AccountInput, CollateralLine, CreditTier
from tests.engine.agreement import assert_vector_matches_reference
from tests.engine.strategies import books
from tests.engine.support import btc_perp, close, usdt

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BOUNDED
@given(books())
def test_vector_matches_reference_on_random_books(market_and_accounts):
    _, accounts = market_and_accounts
    assert_vector_matches_reference(accounts)


def test_exact_bracket_floor_takes_the_upper_bracket():
    account = AccountInput(
        collateral=(usdt("10000"),), positions=(btc_perp(quantity="1", mark="50000"),)
    )
    assert quote_account(account).positions[0].bracket == 2
    assert_vector_matches_reference([account])


def test_empty_account():
    quote = quote_account(AccountInput())
    assert (quote.collateral_value, quote.margin_balance, quote.margin_ratio) == (0, 0, None)
    assert_vector_matches_reference([AccountInput()])


def test_negative_balance_counts_in_full_and_leaves_no_ratio():
    account = AccountInput(
        collateral=(
            usdt("-30000"),
            CollateralLine(asset="BTC", quantity=Decimal("0.1"), price=Decimal(60000)),
        ),
        positions=(btc_perp(quantity="0.5", entry="61000"),),
        credit_tier=CreditTier(haircut_scale=Decimal("1.5"), mm_scale=Decimal("1.2")),
    )
    quote = quote_account(account)
    assert quote.collateral_value == Decimal(-24000)
    assert quote.margin_ratio is None
    assert_vector_matches_reference([account])


def test_isolated_only_account_leaves_the_cross_pool_empty():
    account = AccountInput(
        collateral=(usdt("500"),),
        positions=(
            btc_perp("A", isolated_margin="3000"),
            btc_perp("B", side=-1, quantity="3", isolated_margin="9000"),
        ),
    )
    quote = quote_account(account)
    assert (quote.maintenance_margin, quote.margin_balance) == (0, 500)
    assert all(row.isolated_margin_ratio is not None for row in quote.positions)
    assert_vector_matches_reference([account])


def test_liquidation_price_in_another_bracket_than_the_marks():
    account = AccountInput(
        collateral=(usdt("1900000"),), positions=(btc_perp(quantity="40", mark="60000"),)
    )
    row = quote_account(account).positions[0]
    assert (row.bracket, row.liquidation_bracket) == (3, 2)
    assert_vector_matches_reference([account])


def test_short_liquidation_climbs_into_a_higher_bracket():
    account = AccountInput(
        collateral=(usdt("900000"),), positions=(btc_perp(side=-1, quantity="9", mark="60000"),)
    )
    row = quote_account(account).positions[0]
    assert row.liquidation_bracket > row.bracket
    assert_vector_matches_reference([account])


@pytest.mark.parametrize(
    ("side", "quantity", "collateral"), [(1, "40", "2380000"), (-1, "9", "3000000")]
)
def test_liquidation_price_two_brackets_away_from_the_marks(side, quantity, collateral):
    account = AccountInput(
        collateral=(usdt(collateral),), positions=(btc_perp(side=side, quantity=quantity),)
    )
    row = quote_account(account).positions[0]
    assert abs(row.liquidation_bracket - row.bracket) == 2
    assert_vector_matches_reference([account])


@pytest.mark.parametrize("side", [1, -1])
def test_no_liquidation_price(side):
    # A long backed beyond its notional never liquidates; a short past bankruptcy at any price
    # has no price where equity meets maintenance margin either.
    collateral = "100000" if side == 1 else "-100000"
    account = AccountInput(
        collateral=(usdt(collateral),), positions=(btc_perp(side=side, quantity="1"),)
    )
    assert quote_account(account).positions[0].liquidation_price is None
    assert_vector_matches_reference([account])


def shortfall(
    position,
    price: Decimal,
    *,
    other_equity: Decimal,
    other_requirement: Decimal,
    mm_scale: Decimal,
) -> Decimal:
    """Equity minus maintenance margin with this position's mark at `price`, MM in the bracket
    of the notional at that price."""
    _, bracket = position.brackets.bracket_for(position.quantity * price)
    equity = other_equity + unrealized_pnl(
        position.side, position.quantity, position.entry_price, price
    )
    return (
        equity
        - other_requirement
        - maintenance_margin(position.quantity * price, bracket, mm_scale)
    )


@BOUNDED
@given(books(max_accounts=3))
def test_reference_liquidation_price_meets_its_definition(market_and_accounts):
    """At the liquidation price, equity equals MM taken in the bracket of that price's notional;
    with none, no positive price brings them together. (Positions whose underlying moves other
    prices too are held to their own definition in test_linked.py.)"""
    _, accounts = market_and_accounts
    for account in accounts:
        quote = quote_account(account)
        for position, row in zip(account.positions, quote.positions, strict=True):
            if linked_move(account, position) is not None:
                continue
            if position.is_isolated:
                others = {"other_equity": position.isolated_margin, "other_requirement": Decimal(0)}
            else:
                others = {
                    "other_equity": quote.margin_balance - row.unrealized_pnl,
                    "other_requirement": quote.maintenance_margin - row.maintenance_margin,
                }
            size = float(
                abs(others["other_equity"])
                + others["other_requirement"]
                + position.quantity * position.entry_price
            )
            scale = account.credit_tier.mm_scale
            if row.liquidation_price is not None:
                at_price = shortfall(position, row.liquidation_price, mm_scale=scale, **others)
                assert close(at_price, 0, scale=1e-3 * size)
            else:
                # Long: equity covers MM all the way down; short: it falls short even at 0.
                near_zero = shortfall(
                    position, position.mark_price * Decimal("1e-12"), mm_scale=scale, **others
                )
                assert near_zero * position.side >= -Decimal(1e-12 * size)

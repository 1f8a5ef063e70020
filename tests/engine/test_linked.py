"""Prices of one underlying move together (vectors/README.md): a cross position's liquidation
and bankruptcy price are solved with its mark, the marks of the other cross positions on its
underlying and the price of collateral in that asset moving by one factor.

The issue's repros (issue 15): holding BTC collateral at its price while BTC falls showed a
trader a liquidation price far below the one the account really liquidates at.
"""

from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings

from margin.engine.demo import ASSETS, INSTRUMENTS
from margin.engine.explain import explain_account, render_step
from margin.engine.reference import linked_move, quote_account
from margin.engine.types import AccountInput, CollateralLine, PositionInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import assert_vector_matches_reference
from tests.engine.strategies import linked_books
from tests.engine.support import btc_perp, close, usdt

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _btc(quantity: str, price: str = "95000") -> CollateralLine:
    return CollateralLine(
        asset="BTC",
        quantity=Decimal(quantity),
        price=Decimal(price),
        haircut_tiers=ASSETS["BTC"][2],
    )


def _btc_long(quantity: str, *, underlying: str | None = "BTC") -> PositionInput:
    """A BTCUSDT long opened at the mark of 95,000 on Binance's brackets, leverage 10."""
    return PositionInput(
        id="BTCUSDT",
        side=1,
        quantity=Decimal(quantity),
        entry_price=Decimal(95000),
        mark_price=Decimal(95000),
        leverage=Decimal(10),
        brackets=INSTRUMENTS["BTCUSDT"][1],
        underlying=underlying,
    )


# (collateral, long quantity, the price shown before, the price the account liquidates at)
REPROS = {
    "1 BTC collateral, 3 BTC long": ((_btc("1"),), "3", "65226.13", "72414.23"),
    "0.2 BTC and -5,000 USDT, 0.5 BTC long": (
        (_btc("0.2"), usdt("-5000")),
        "0.5",
        "69176.71",
        "76308.14",
    ),
}


@pytest.mark.parametrize("name", sorted(REPROS))
def test_issue_repro_liquidates_where_the_account_really_does(name):
    collateral, quantity, shown_before, real = REPROS[name]
    # given: the same account with the position's underlying named, and without
    linked = AccountInput(collateral=collateral, positions=(_btc_long(quantity),))
    alone = AccountInput(collateral=collateral, positions=(_btc_long(quantity, underlying=None),))
    # when
    linked_price = quote_account(linked).positions[0].liquidation_price
    alone_price = quote_account(alone).positions[0].liquidation_price
    # then: the old figure only where nothing names BTC; the real one where it is named
    assert round(alone_price, 2) == Decimal(shown_before)
    assert round(linked_price, 2) == Decimal(real)
    book, marks, prices = book_from_accounts([linked])
    assert close(revalue(book, marks, prices).liquidation_price[0], linked_price)
    # and at that price the account's equity (BTC collateral moved too) meets its MM
    move = linked_move(linked, linked.positions[0])
    scale = linked_price / Decimal(95000)
    assert close(move.equity(scale) - move.maintenance(scale), Decimal(0), scale=1.0)


def test_explain_shows_the_linked_move():
    collateral, quantity, _, real = REPROS["1 BTC collateral, 3 BTC long"]
    account = AccountInput(collateral=collateral, positions=(_btc_long(quantity),))
    steps = explain_account(account)["positions.BTCUSDT.liquidation_price"]
    texts = [render_step(step) for step in steps]
    assert "the price of BTC collateral" in texts[0]
    assert texts[-1].startswith("liquidation price = mark price 95,000.00 × s ")
    assert f"= {real[:2]},{real[2:]}" in texts[-1]
    equity, requirement = steps[1].result, steps[2].result
    assert close(equity, requirement, scale=1.0)


def test_other_positions_on_the_underlying_move_with_it():
    # A long and a short on BTC of the same size: a BTC move changes the pair's PnL by nothing,
    # only its MM grows with the price. 2,000 USDT covers MM 2 × (P × 0.005 − 50) up to
    # P = 210,000 (bracket 2), and no fall ever liquidates it; each leg held alone against the
    # other's fixed mark would show a price a few percent away.
    account = AccountInput(
        collateral=(usdt("2000"),),
        positions=(btc_perp("L", quantity="1"), btc_perp("S", side=-1, quantity="1")),
    )
    rows = quote_account(account).positions
    assert [row.liquidation_price for row in rows] == [Decimal(210000), Decimal(210000)]
    assert_vector_matches_reference([account])


def test_a_short_backed_by_the_coin_it_shorts_liquidates_on_a_rise_only_past_the_cover():
    # 2 BTC collateral at 0.95 against a 1 BTC short: the short's loss on a rise is more than
    # covered by the collateral gaining; a fall costs the collateral more than the short earns
    # once haircuts bite, so the nearest root is below the mark.
    account = AccountInput(
        collateral=(_btc("2", "60000"), usdt("-100000")),
        positions=(btc_perp(side=-1, quantity="1"),),
    )
    row = quote_account(account).positions[0]
    assert row.liquidation_price is not None and row.liquidation_price < Decimal(60000)
    assert_vector_matches_reference([account])


@BOUNDED
@given(linked_books())
def test_vector_matches_reference_on_books_with_collateral_in_the_underlying(market_and_accounts):
    _, accounts = market_and_accounts
    assert_vector_matches_reference(accounts)


def _crossings(move, low: Decimal, high: Decimal, *, with_maintenance: bool) -> int:
    """Sign changes of excess on a grid strictly inside (low, high)."""
    grid = [low + (high - low) * Decimal(k) / 200 for k in range(1, 200)]
    signs = [move.excess(s, with_maintenance=with_maintenance) > 0 for s in grid]
    return sum(a != b for a, b in pairwise(signs))


@BOUNDED
@given(linked_books(max_accounts=2))
def test_reference_linked_price_meets_its_definition(market_and_accounts):
    """At the price, equity meets MM with every BTC price moved by the same factor, and no
    factor nearer to 1 does; with none, excess keeps one sign on every positive factor tried."""
    _, accounts = market_and_accounts
    for account in accounts:
        quote = quote_account(account)
        for position, row in zip(account.positions, quote.positions, strict=True):
            move = linked_move(account, position)
            if move is None:
                continue
            size = float(
                abs(move.margin_balance)
                + move.cross_maintenance
                + sum(p.quantity * p.mark_price for p in move.positions)
                + sum(abs(line.quantity * line.price) for line in move.lines)
            )
            for price, with_maintenance in (
                (row.liquidation_price, True),
                (row.bankruptcy_price, False),
            ):
                if price is None:
                    factors = [Decimal(k) / 50 for k in range(1, 500)]
                    signs = {move.excess(s, with_maintenance=with_maintenance) > 0 for s in factors}
                    at_one = move.excess(Decimal(1), with_maintenance=with_maintenance)
                    assert len(signs) == 1 or at_one == 0
                    continue
                scale = price / position.mark_price
                at_root = move.excess(scale, with_maintenance=with_maintenance)
                assert close(at_root, Decimal(0), scale=1e-9 * size)
                low, high = sorted((scale, Decimal(1)))
                assert _crossings(move, low, high, with_maintenance=with_maintenance) == 0

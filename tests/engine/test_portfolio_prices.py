"""Portfolio-scheme liquidation prices over a whole book (`margin.engine.portfolio_prices`)
held to the Decimal reference's bisection (`scheme.portfolio_liquidation_price`)."""

from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine.portfolio_prices import portfolio_liquidation_prices
from margin.engine.reference import quote_account
from margin.engine.scheme import portfolio_liquidation_price
from margin.engine.stress import StressModel
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import account_size
from tests.engine.strategies import books, linked_books
from tests.engine.support import btc_perp, usdt

# The stated tolerance: the reference stops bisecting when its bracket is 1e-10 of the mark
# wide, the vectorized engine halves 50 times; on top of that the float headroom is off by
# ~1e-16 of the account's amounts, which moves the root by that over the headroom's slope.
# 1e-8 of the mark, or 1e-8 of the price an account's whole size would move by.
TOLERANCE = 1e-8


def assert_portfolio_prices_agree(accounts: list[AccountInput], seed: int) -> int:
    """Asserts both engines' portfolio liquidation prices agree; answers how many it compared."""
    book, marks, prices = book_from_accounts(accounts)
    rng = np.random.default_rng(seed)
    model = StressModel.build(
        book.asset_names, rng.uniform(0.001, 0.1, book.n_assets), k=float(rng.uniform(1, 5))
    )
    portfolio = rng.random(book.n_accounts) < 0.8
    revaluation = revalue(book, marks, prices)
    vector = portfolio_liquidation_prices(book, marks, prices, revaluation, model, portfolio)
    row, compared = 0, 0
    for a, account in enumerate(accounts):
        quote = quote_account(account)
        for position, expected in zip(account.positions, quote.positions, strict=True):
            if portfolio[a] and not position.is_isolated:
                reference = portfolio_liquidation_price(
                    account, model, position, expected.liquidation_price
                ).price
                compared += 1
            else:
                # Everyone else keeps the tiered price the revaluation solved.
                reference = revaluation.liquidation_price[row]
            mark = float(position.mark_price)
            scale = mark + account_size(account) / float(position.quantity)
            got = vector[row]
            if reference is None or np.isnan(float(reference)):
                assert np.isnan(got), (a, position.id, got)
            else:
                assert abs(got - float(reference)) <= TOLERANCE * scale, (
                    a,
                    position.id,
                    got,
                    reference,
                )
            row += 1
    return compared


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(max_accounts=4), st.integers(0, 2**32 - 1))
def test_vector_portfolio_prices_match_the_reference(market_and_accounts, seed):
    assert_portfolio_prices_agree(market_and_accounts[1], seed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_books(max_accounts=3), st.integers(0, 2**32 - 1))
def test_vector_portfolio_prices_match_the_reference_with_collateral_in_the_underlying(
    market_and_accounts, seed
):
    assert_portfolio_prices_agree(market_and_accounts[1], seed)


def test_the_stress_term_moves_the_tick_price_off_the_tiered_one():
    # given: 12,000 USDT behind a 1 BTC long at 60,000 (tiered price about 48,240), BTC at 3 %
    # a day, k = 3: the stress loss binds and the account goes well before the tiered line
    account = AccountInput(collateral=(usdt("12000"),), positions=(btc_perp(),))
    book, marks, prices = book_from_accounts([account])
    model = StressModel.build(book.asset_names, np.full(book.n_assets, 0.03), k=3.0)
    revaluation = revalue(book, marks, prices)
    tiered = float(revaluation.liquidation_price[0])
    # when
    standard = portfolio_liquidation_prices(
        book, marks, prices, revaluation, model, np.array([False])
    )
    portfolio = portfolio_liquidation_prices(
        book, marks, prices, revaluation, model, np.array([True])
    )
    # then
    assert standard[0] == tiered
    reference = portfolio_liquidation_price(
        account, model, account.positions[0], Decimal(repr(tiered))
    ).price
    assert portfolio[0] > tiered + 1000
    assert abs(portfolio[0] - float(reference)) <= TOLERANCE * 60_000


def test_pairs_solved_out_of_their_order_keep_their_own_members():
    # given: four portfolio accounts long BTC at 60,000, their tiered prices 10 %, 25 %, 20 %
    # and 67 % below the mark, so the pairs are bisected narrowest first, in the order 0, 2, 1,
    # 3: from the first to the last as many pairs as there are, yet not one consecutive run
    accounts = [
        AccountInput(collateral=(usdt(collateral),), positions=(btc_perp(quantity=quantity),))
        for collateral, quantity in (("6000", "1"), ("30000", "2"), ("12000", "1"), ("40000", "1"))
    ]
    book, marks, prices = book_from_accounts(accounts)
    model = StressModel.build(book.asset_names, np.full(book.n_assets, 0.03), k=3.0)
    revaluation = revalue(book, marks, prices)
    # when
    prices_found = portfolio_liquidation_prices(
        book, marks, prices, revaluation, model, np.ones(4, dtype=bool)
    )
    # then: each account's price is its own, as the reference finds it one account at a time
    for row, account in enumerate(accounts):
        tiered = Decimal(repr(float(revaluation.liquidation_price[row])))
        expected = portfolio_liquidation_price(account, model, account.positions[0], tiered).price
        assert abs(prices_found[row] - float(expected)) <= TOLERANCE * 60_000, row

"""The vectorized options engine says what the Decimal reference says, within 1e-9, on random
books of options beside perpetuals and collateral (`margin.engine.options_vector`)."""

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.engine.options_vector import (
    option_book_from_accounts,
    portfolio_accounts,
    portfolio_grid,
)
from margin.engine.reference import quote_account
from margin.engine.types import PORTFOLIO, STANDARD, AccountInput, OptionInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import FLOOR_FRACTION, account_size
from tests.engine.strategies import accounts, decimals, markets
from tests.engine.support import close


@st.composite
def option_series(draw, underlying: str, forward: Decimal) -> dict:
    return {
        "underlying": underlying,
        "option_type": draw(st.sampled_from(["call", "put"])),
        "strike": forward * draw(decimals("0.3", "2.5", 3)),
        "expiry_days": draw(st.one_of(decimals("0.1", "45", 2), decimals("20", "400", 1))),
        "implied_vol": draw(decimals("0.1", "2", 3)),
        "underlying_price": forward,
    }


@st.composite
def option_books(draw) -> list[AccountInput]:
    market = draw(markets())
    forwards = {name: market["assets"][name][0] for name in ("BTC", "ETH")}
    forwards["SOL"] = draw(decimals("5", "500", 2))  # an underlying nothing else trades
    series = [
        draw(option_series(name, forwards[name]))
        for name in draw(st.lists(st.sampled_from(sorted(forwards)), min_size=1, max_size=6))
    ]
    books = []
    for _ in range(draw(st.integers(1, 5))):
        base = draw(accounts(market))
        options = tuple(
            OptionInput(
                id=f"O{n}",
                side=draw(st.sampled_from([1, -1])),
                quantity=draw(decimals("0.01", "50", 2)),
                entry_price=draw(decimals("0", "5000", 2)),
                **draw(st.sampled_from(series)),
            )
            for n in range(draw(st.integers(0, 5)))
        )
        books.append(
            AccountInput(
                collateral=base.collateral,
                positions=base.positions,
                credit_tier=base.credit_tier,
                options=options,
                margin_scheme=draw(st.sampled_from([STANDARD, STANDARD, PORTFOLIO])),
            )
        )
    return books


def _size(account: AccountInput) -> float:
    """The amounts the account's figures are made of: its linear size and each option's
    underlying value and premium, for the floor of values near 0."""
    size = account_size(account)
    for o in account.options:
        size += float(o.quantity * (o.underlying_price * 6 + o.entry_price + o.strike))
    return size


@settings(max_examples=60, deadline=None)
@given(option_books())
def test_vector_options_engine_matches_the_reference(books):
    book, marks, prices = book_from_accounts(books)
    option_book, market = option_book_from_accounts(books, book)
    revaluation = revalue(book, marks, prices)
    grid = portfolio_grid(option_book, marks, market.forwards, market.vols)
    figures = portfolio_accounts(revaluation, grid)
    row = 0
    for a, account in enumerate(books):
        quote = quote_account(account)
        floor = FLOOR_FRACTION * _size(account)
        assert bool(grid.grid_account[a]) == account.portfolio_margined
        pairs = {
            "unrealized_pnl": (figures.unrealized_pnl[a], quote.unrealized_pnl),
            "margin_balance": (figures.margin_balance[a], quote.margin_balance),
            "maintenance_margin": (figures.maintenance_margin[a], quote.maintenance_margin),
            "initial_margin": (figures.initial_margin[a], quote.initial_margin),
            "withdrawable": (figures.withdrawable[a], quote.withdrawable),
        }
        if abs(quote.margin_balance) > Decimal(1e-6 * floor):
            pairs["margin_ratio"] = (figures.margin_ratio[a], quote.margin_ratio)
        for name, (vector_value, reference_value) in pairs.items():
            assert close(vector_value, reference_value, scale=floor), (a, name)
        for option, expected in zip(account.options, quote.options, strict=True):
            f = float(option.underlying_price)
            root_t = float((option.expiry_days / 365).sqrt())
            sigma = float(option.implied_vol)
            assert close(grid.option_mark[row], expected.mark_price, scale=f), option.id
            assert close(grid.option_unrealized_pnl[row], expected.unrealized_pnl, scale=floor)
            assert close(grid.option_position_delta[row], expected.position_delta, scale=floor)
            series = option_book.positions.series[row]
            assert close(grid.series.gamma[series], expected.gamma, scale=1 / (f * sigma * root_t))
            assert close(grid.series.vega[series], expected.vega, scale=f * root_t / 100)
            assert close(grid.series.theta[series], expected.theta, scale=f * sigma / root_t / 365)
            row += 1
        if quote.portfolio is None:
            continue
        for risk in quote.portfolio.underlyings:
            key = option_book.key_names.index(risk.underlying)
            group = np.searchsorted(grid.cells, a * option_book.n_keys + key)
            assert grid.cells[group] == a * option_book.n_keys + key
            for name in ("scan_risk", "min_delta_risk", "net_delta"):
                assert close(getattr(grid, name)[group], getattr(risk, name), scale=floor), name
            losses = grid.scenario_losses(np.array([group]))[0]
            for n, loss in enumerate(risk.losses):
                assert close(losses[n], loss, scale=floor), n
            # The binding scenario is the same, or one whose loss ties it within float error.
            worst = grid.worst_scenario[group]
            assert close(risk.losses[worst], risk.losses[risk.worst_scenario], scale=floor)
        groups_of_account = np.flatnonzero(grid.cells // option_book.n_keys == a)
        assert len(groups_of_account) == len(quote.portfolio.underlyings)

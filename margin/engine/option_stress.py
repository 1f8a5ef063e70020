"""Options under the desk's stress scenarios and cascade: revalued in full with Black-76, never
by their delta.

A scenario moves each asset's price by a relative move x. An option on that asset is priced
again at the shocked forward F·(1 + x), in the settlement coin as `shocked_prices` moves the
linear marks, and at a shocked vol σ' = σ·(1 + v·(30 / max(1, days))^p), the vol-shock scaling
of OPTIONS.md's grid. A short put in a crash so loses its whole convex loss, not delta × move.
Each account holding options is then margined by the grid at the shocked market (portfolio
maintenance, OPTIONS.md), its margin balance counting its options at their shocked value.

Vol shock of a scenario that names only price moves (the desk's library, its EWMA and
correlated ones included): an asset that falls, or rises by the grid's largest regular move
(16 %) or more, takes the grid's vol-up +0.40 (a crash raises implied vol, and every tail
scenario of the grid carries it); an asset that rises less takes the grid's vol-down −0.22;
an unmoved asset keeps its vol.
"""

from dataclasses import dataclass, replace

import numpy as np

from margin.engine.options import VOL_DOWN, VOL_UP
from margin.engine.options_vector import (
    OptionBook,
    OptionMarket,
    PortfolioGrid,
    black76,
    black76_value,
    portfolio_accounts,
    portfolio_grid,
    scenario_sums,
    vol_shock_scale,
)
from margin.engine.shocks import FLOOR_MOVE
from margin.engine.vector import Book, Revaluation

LARGE_RISE = 0.16
"""The grid's largest regular move: a rise this large is paired with vol up only."""
VOL_FLOOR_FACTOR = 0.01
"""A shocked vol keeps at least this share of its level: Black-76 needs σ > 0."""


def scenario_vol_shocks(moves: np.ndarray) -> np.ndarray:
    """The vol shock v of each asset (or each step × asset) from its price move (see above)."""
    moves = np.asarray(moves, dtype=float)
    up = (moves < 0) | (moves >= LARGE_RISE)
    return np.where(moves == 0, 0.0, np.where(up, float(VOL_UP), float(VOL_DOWN)))


@dataclass(frozen=True)
class HeldOptions:
    """A book's option positions (`OptionBook`, its `book` the linear book beside them) and
    the market they are marked at now (a forward and an implied vol per series)."""

    options: OptionBook
    market: OptionMarket

    def shocked(self, moves: np.ndarray, vol_shocks: np.ndarray, book: Book) -> OptionMarket:
        """Each series' forward and vol after its underlying moves by `moves` (relative,
        clipped at −99 %) with vol shock `vol_shocks`, both over the option book's keys (the
        book's assets, then option-only underlyings); a key past their end holds still."""
        series = self.options.series
        moves = np.maximum(np.asarray(moves, dtype=float), FLOOR_MOVE)
        vol_shocks = np.asarray(vol_shocks, dtype=float)
        on_book = series.underlying < len(moves)
        asset = np.where(on_book, series.underlying, 0)
        move = np.where(on_book, moves[asset] if len(moves) else 0.0, 0.0)
        shock = np.where(on_book, vol_shocks[asset] if len(moves) else 0.0, 0.0)
        forwards = self.market.forwards * (1.0 + move)
        if book.settlement_asset >= 0:
            forwards = forwards / (1.0 + moves[book.settlement_asset])
        factor = np.maximum(1.0 + shock * vol_shock_scale(series.expiry_days), VOL_FLOOR_FACTOR)
        return OptionMarket(forwards=forwards, vols=self.market.vols * factor)

    def after_liquidation(self, book: Book, liquidated: np.ndarray) -> "HeldOptions":
        """What is left beside `book` (the linear book after a round) once the accounts
        flagged in `liquidated` have had their options closed."""
        positions = self.options.positions
        kept = ~liquidated[positions.account]
        left = type(positions)(
            account=positions.account[kept],
            series=positions.series[kept],
            side=positions.side[kept],
            quantity=positions.quantity[kept],
            entry_price=positions.entry_price[kept],
        )
        return replace(self, options=replace(self.options, book=book, positions=left))


def with_options(
    revaluation: Revaluation, held: HeldOptions, marks: np.ndarray, market: OptionMarket
) -> tuple[Revaluation, PortfolioGrid]:
    """`revaluation` (the linear book at `marks`) with each account's cross pool counting its
    options at their Black-76 value in `market` and, for accounts on the grid, the grid's
    portfolio requirement and ratio; the grid beside it."""
    grid = portfolio_grid(held.options, marks, market.forwards, market.vols)
    pool = portfolio_accounts(revaluation, grid)
    joined = replace(
        revaluation,
        account_unrealized_pnl=pool.unrealized_pnl,
        margin_balance=pool.margin_balance,
        account_maintenance_margin=pool.maintenance_margin,
        account_initial_margin=pool.initial_margin,
        margin_ratio=pool.margin_ratio,
        withdrawable=pool.withdrawable,
    )
    return joined, grid


def option_dollar_delta(grid: PortfolioGrid, held: HeldOptions, market: OptionMarket):
    """Per option position: side × quantity × delta × F, the underlying it stands for."""
    return grid.option_position_delta * market.forwards[held.options.positions.series]


def option_sold_by_asset(
    grid: PortfolioGrid,
    held: HeldOptions,
    market: OptionMarket,
    closed: np.ndarray,
    n_assets: int,
) -> np.ndarray:
    """USD of each asset the closing of the `closed` option positions sells (its hedge unwound
    through the underlying's book: a long call closed sells its delta), by asset."""
    positions = held.options.positions
    underlying = held.options.series.underlying[positions.series]
    sold = closed & (underlying < n_assets)
    return np.bincount(
        underlying[sold],
        weights=option_dollar_delta(grid, held, market)[sold],
        minlength=n_assets,
    ).astype(float)[:n_assets]


def option_scenario_losses(
    held: HeldOptions, book: Book, price_shocks: np.ndarray, workers: int | None = None
) -> np.ndarray:
    """Accounts × scenarios: what each account's options lose under each scenario (its USD
    moves over the book's assets, `price_shocks` S × assets), revalued in full with Black-76
    at the shocked forward and the scenario's vol shock (`scenario_vol_shocks`), time held:
    the traders' own stress margin (`margin.engine.stress`). Each series is priced once per
    scenario, then summed by account on `workers` threads."""
    options = held.options
    series = options.series
    now = black76_value(
        series.is_call, held.market.forwards, series.strike, held.market.vols, series.expiry_days
    )
    # Per scenario and series: the value lost, now less the value under the scenario.
    lost = np.empty((len(price_shocks), len(series)))
    for s, moves in enumerate(price_shocks):
        shocked = held.shocked(moves, scenario_vol_shocks(moves), book)
        lost[s] = now - black76_value(
            series.is_call, shocked.forwards, series.strike, shocked.vols, series.expiry_days
        )
    losses = scenario_sums(
        lost,
        options.positions.series,
        options.option_signed_quantity,
        options.positions.account,
        book.n_accounts,
        workers,
    )
    return losses.T


def option_delta_exposures(held: HeldOptions, book: Book) -> np.ndarray:
    """Accounts × assets: each account's options at their delta, side × quantity × delta × F
    on their underlying (option-only underlyings, past the book's assets, left out)."""
    series, positions = held.options.series, held.options.positions
    delta = black76(
        series.is_call, held.market.forwards, series.strike, held.market.vols, series.expiry_days
    ).delta
    dollars = positions.side * positions.quantity * (delta * held.market.forwards)[positions.series]
    underlying = series.underlying[positions.series]
    on_book = underlying < book.n_assets
    cells = positions.account[on_book] * book.n_assets + underlying[on_book]
    exposure = np.bincount(
        cells, weights=dollars[on_book], minlength=book.n_accounts * book.n_assets
    )
    return exposure.reshape(book.n_accounts, book.n_assets)

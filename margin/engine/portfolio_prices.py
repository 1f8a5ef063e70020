"""Liquidation prices under the portfolio scheme for a whole book: the vectorized
`scheme.portfolio_liquidation_price`.

An account under the portfolio scheme is liquidated where its margin balance meets
max(tiered MM, stress loss). For each of its underlyings, every cross position on it and
every holding of it move together by one scale s of their prices (vectors/README.md, "Prices
of one underlying move together"); the headroom, balance − requirement, is continuous in s
but not linear (the stress loss is a norm of the exposures), so it is bisected, as in the
reference: between s = 1 (the mark) and the tiered liquidation price's scale, where the
balance meets the tiered MM and so the larger requirement too.

Here every (portfolio account, underlying) pair is bisected at once, a fixed number of halvings
for all: each halving evaluates only the pairs' members (the positions on the underlying and
the holdings of it) and one exposure row per pair, so the cost grows with the portfolio
accounts' positions, not with the book.
"""

from dataclasses import dataclass

import numpy as np

from margin.engine.stress import StressModel, covariance_losses
from margin.engine.vector import (
    Book,
    Revaluation,
    line_values,
    position_maintenance,
    sum_by,
)

BISECTION_STEPS = 50
"""Halvings of every pair's bracket: the widest, [10⁻⁴, 100] of the mark, ends below 10⁻¹³ of
the mark, finer than the reference's stop at 10⁻¹⁰ (`scheme.PRICE_PRECISION`)."""
# With no tiered liquidation price, the search reaches this far (`scheme.FARTHEST_*`).
FARTHEST_FALL, FARTHEST_RISE = 1e-4, 100.0


@dataclass(frozen=True)
class _Pairs:
    """The (portfolio account, underlying) pairs and their members at s = 1. Per pair: the
    account's margin balance, tiered MM and exposure row (the pair's own column zeroed), its
    underlying's column; per member position (`positions`, book rows) and holding (`lines`):
    its pair and its figures at the marks."""

    n: int
    asset: np.ndarray
    balance: np.ndarray
    tiered: np.ndarray
    exposures: np.ndarray
    positions: np.ndarray
    position_pair: np.ndarray
    mark: np.ndarray
    quantity: np.ndarray
    side: np.ndarray
    maintenance: np.ndarray
    lines: np.ndarray
    line_pair: np.ndarray
    price: np.ndarray
    line_value: np.ndarray

    def headroom(self, book: Book, model: StressModel, scale: np.ndarray) -> np.ndarray:
        """Margin balance − max(tiered MM, stress loss) of each pair's account with its
        underlying's prices × `scale` (one per pair)."""
        moved_scale = scale[self.position_pair]
        mark = self.mark * moved_scale
        notional = self.quantity * mark
        maintenance = np.empty(len(notional))
        position_maintenance(
            book, self.positions, mark, notional, out=maintenance, addon_out=np.empty_like(mark)
        )
        value = line_values(book, self.lines, self.price * scale[self.line_pair])
        side_notional = self.side * notional
        n = self.n
        pnl_change = side_notional - self.side * self.quantity * self.mark
        value_change = value - self.line_value
        balance = self.balance + sum_by(self.position_pair, pnl_change, n)
        balance += sum_by(self.line_pair, value_change, n)
        tiered = self.tiered + sum_by(self.position_pair, maintenance - self.maintenance, n)
        exposures = self.exposures.copy()
        exposures[np.arange(n), self.asset] = sum_by(self.position_pair, side_notional, n)
        exposures[np.arange(n), self.asset] += sum_by(self.line_pair, value, n)
        return balance - np.maximum(tiered, _stress_loss(exposures, model))


def _stress_loss(exposures: np.ndarray, model: StressModel) -> np.ndarray:
    """`stress.stress_margin`'s worst loss of each exposure row: max(0, the covariance loss,
    each named move's loss)."""
    loss = np.maximum(covariance_losses(exposures, model), 0.0)
    shocks = model.scenarios.price_shocks
    if shocks.size:
        loss = np.maximum(loss, (exposures @ -shocks.T).max(axis=1))
    return loss


def _pairs(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    revaluation: Revaluation,
    portfolio: np.ndarray,
) -> _Pairs | None:
    accounts = np.flatnonzero(portfolio)
    # Compact rows of the portfolio accounts; everything else (and the isolated positions'
    # extra pool) maps to −1.
    row_of = np.full(book.n_accounts + 1, -1, dtype=np.int64)
    row_of[accounts] = np.arange(len(accounts))
    position_row = row_of[book.pos_cross_account]
    positions = np.flatnonzero(position_row >= 0)
    if not positions.size:
        return None
    n_assets = book.n_assets
    position_cell = position_row[positions] * n_assets
    position_cell += book.instrument_asset[book.pos_instrument[positions]]
    line_row = row_of[book.col_account]
    lines = np.flatnonzero(line_row >= 0)
    line_cell = line_row[lines] * n_assets + book.col_asset[lines]
    # The portfolio accounts' exposures, as `stress.account_exposures` forms them for all.
    n_cells = len(accounts) * n_assets
    side_notional = book.pos_side[positions] * revaluation.notional[positions]
    exposures = sum_by(position_cell, side_notional, n_cells)
    exposures += sum_by(line_cell, revaluation.collateral_line_value[lines], n_cells)
    exposures = exposures.reshape(len(accounts), n_assets)

    cells, position_pair = np.unique(position_cell, return_inverse=True)
    pair_of_cell = np.full(n_cells, -1, dtype=np.int64)
    pair_of_cell[cells] = np.arange(len(cells))
    line_pair = pair_of_cell[line_cell]
    lines, line_pair = lines[line_pair >= 0], line_pair[line_pair >= 0]
    pair_row, asset = np.divmod(cells, n_assets)
    pair_exposures = exposures[pair_row]
    pair_exposures[np.arange(len(cells)), asset] = 0.0
    pair_account = accounts[pair_row]
    if book.settlement_asset >= 0:
        # Collateral in the settlement coin, as `vector.revalue` values it.
        asset_prices = asset_prices / asset_prices[book.settlement_asset]
    return _Pairs(
        n=len(cells),
        asset=asset,
        balance=revaluation.margin_balance[pair_account],
        tiered=revaluation.account_maintenance_margin[pair_account],
        exposures=pair_exposures,
        positions=positions,
        position_pair=position_pair,
        mark=marks[book.pos_instrument[positions]],
        quantity=book.pos_quantity[positions],
        side=book.pos_side[positions],
        maintenance=revaluation.maintenance_margin[positions],
        lines=lines,
        line_pair=line_pair,
        price=asset_prices[book.col_asset[lines]],
        line_value=revaluation.collateral_line_value[lines],
    )


def portfolio_liquidation_prices(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    revaluation: Revaluation,
    model: StressModel,
    portfolio: np.ndarray,
) -> np.ndarray:
    """Every position's liquidation price with the accounts marked in `portfolio` under the
    portfolio scheme: for their cross positions the price of the underlying at which the
    balance meets max(tiered MM, stress loss) (the mark for an account already past it, nan
    where no price reaches it); every other position keeps `revaluation`'s tiered price.
    `revaluation` is the book's at `marks` and `asset_prices`, with its liquidation prices;
    `model` is in the book's asset order. Without a portfolio account's cross position, the
    revaluation's own array is answered (not a copy)."""
    pairs = _pairs(
        book,
        np.asarray(marks, dtype=float),
        np.asarray(asset_prices, dtype=float),
        revaluation,
        portfolio,
    )
    if pairs is None:
        return revaluation.liquidation_price
    prices = revaluation.liquidation_price.copy()
    n = pairs.n
    past = pairs.headroom(book, model, np.ones(n)) <= 0
    # The tiered price's scale, the same for every member of a pair (they move together).
    first = np.full(n, -1, dtype=np.int64)
    first[pairs.position_pair[::-1]] = np.arange(len(pairs.positions))[::-1]
    tiered_scale = prices[pairs.positions[first]] / pairs.mark[first]
    far = np.where(np.isfinite(tiered_scale) & (tiered_scale > 0), tiered_scale, np.nan)
    farther = np.isnan(far)
    farther[~farther] = pairs.headroom(book, model, np.nan_to_num(far, nan=1.0))[~farther] > 0
    # Past the tiered price or without one: as far as the search reaches, down for a pair
    # long its underlying (in quantity, positions and holdings), up otherwise.
    quantity = sum_by(pairs.position_pair, pairs.side * pairs.quantity, n)
    quantity += sum_by(pairs.line_pair, book.col_quantity[pairs.lines], n)
    far = np.where(farther, np.where(quantity > 0, FARTHEST_FALL, FARTHEST_RISE), far)
    nowhere = farther & (pairs.headroom(book, model, far) > 0)
    clear, met = np.ones(n), far  # headroom > 0 at `clear`, ≤ 0 at `met`
    for _ in range(BISECTION_STEPS):
        middle = (clear + met) / 2
        stands = pairs.headroom(book, model, middle) > 0
        clear = np.where(stands, middle, clear)
        met = np.where(stands, met, middle)
    scale = np.where(past, 1.0, np.where(nowhere, np.nan, met))
    prices[pairs.positions] = pairs.mark * scale[pairs.position_pair]
    return prices

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
accounts' positions, not with the book. The members are copied once into a small book of their
own per chunk of pairs (contiguous rows: no gather per halving), and the chunks run on every
core.
"""

import math
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from margin.engine.parallel import run_tasks
from margin.engine.stress import StressModel, in_settlement_coin
from margin.engine.vector import (
    COLLATERAL_FIELDS,
    POSITION_FIELDS,
    Book,
    Revaluation,
    group_runs,
    line_values,
    position_maintenance,
    sum_by,
)

FINAL_WIDTH = 1e-11
"""Every pair's bracket is halved until the widest is this share of the mark: a tenth of the
reference's stop at 10⁻¹⁰ (`scheme.PRICE_PRECISION`), so the two answers lie within
1.1 × 10⁻¹⁰ of the mark of each other, rounding of the headroom aside."""
# With no tiered liquidation price, the search reaches this far (`scheme.FARTHEST_*`); a
# headroom at the tiered price within this share of the balance and MM is 0 (`scheme.TIERED_TIE`).
FARTHEST_FALL, FARTHEST_RISE, TIERED_TIE = 1e-4, 100.0, 1e-9
PAIR_CHUNK = 1 << 13
"""Pairs per task: each chunk's members stay in cache through its halvings."""


@dataclass(frozen=True)
class _Pairs:
    """A chunk of (portfolio account, underlying) pairs and their members at s = 1. Per pair:
    the account's margin balance, that less its members' PnL moves and collateral values (what
    stays as it is), its tiered MM and exposure row (the pair's own column zeroed),
    its underlying's column, the scale of its tiered liquidation price (nan: none), its net
    quantity of the underlying; `members`, a book of the pairs' member positions and holdings
    alone (each pair's rows contiguous), and per member its pair and figures at the marks."""

    n: int
    asset: np.ndarray
    balance: np.ndarray
    balance_without_members: np.ndarray
    tiered: np.ndarray
    stress: "_PairStress"
    tiered_scale: np.ndarray
    quantity: np.ndarray
    members: Book
    position_pair: np.ndarray
    mark: np.ndarray
    side_notional: np.ndarray
    maintenance: np.ndarray
    line_pair: np.ndarray
    price: np.ndarray

    def headroom(self, scale: np.ndarray) -> np.ndarray:
        """Margin balance − max(tiered MM, stress loss) of each pair's account with its
        underlying's prices × `scale` (one per pair)."""
        members, n = self.members, self.n
        moved_scale = scale[self.position_pair]
        mark = self.mark * moved_scale
        notional = members.pos_quantity * mark
        maintenance = np.empty(len(notional))
        position_maintenance(
            members, slice(None), mark, notional, out=maintenance, addon_out=np.empty_like(mark)
        )
        maintenance -= self.maintenance
        value = line_values(members, slice(None), self.price * scale[self.line_pair])
        side_notional = self.side_notional * moved_scale
        column = sum_by(self.position_pair, side_notional, n)
        column += sum_by(self.line_pair, value, n)
        balance = self.balance_without_members + column
        tiered = self.tiered + sum_by(self.position_pair, maintenance, n)
        return balance - np.maximum(tiered, self.stress.loss(column))

    def brackets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pair, as `scheme.portfolio_liquidation_price` sets the search up: whether the
        account is past its requirement at the mark already, the far end of the search (the
        tiered price's scale, or as far as it reaches), and whether it stands clear even
        there (no price reaches the requirement)."""
        n = self.n
        past = self.headroom(np.ones(n)) <= 0
        far = self.tiered_scale
        farther = np.isnan(far)
        tie = TIERED_TIE * (np.abs(self.balance) + self.tiered)
        farther[~farther] = (self.headroom(np.nan_to_num(far, nan=1.0)) > tie)[~farther]
        # Past the tiered price or without one: as far as the search reaches, down for a pair
        # long its underlying (in quantity, positions and holdings), up otherwise.
        far = np.where(farther, np.where(self.quantity > 0, FARTHEST_FALL, FARTHEST_RISE), far)
        nowhere = farther & (self.headroom(far) > 0)
        return past, far, nowhere

    def bisect(self, far: np.ndarray) -> np.ndarray:
        """Per pair, the scale in [1, `far`] where the headroom, > 0 at 1 and ≤ 0 at `far`,
        turns: the end of its last bracket where it is ≤ 0, as the reference answers."""
        clear, met = np.ones(self.n), far  # headroom > 0 at `clear`, ≤ 0 at `met`
        for _ in range(bisection_steps(far)):
            middle = (clear + met) / 2
            stands = self.headroom(middle) > 0
            clear = np.where(stands, middle, clear)
            met = np.where(stands, met, middle)
        return met


def bisection_steps(far: np.ndarray) -> int:
    """How many halvings take the widest bracket [1, far] down to FINAL_WIDTH: one count for
    every pair of a chunk (44 for [1, 100])."""
    widest = float(np.max(np.abs(far - 1.0), initial=0.0))
    return max(0, math.ceil(math.log2(widest / FINAL_WIDTH))) if widest > 0 else 0


@dataclass(frozen=True)
class _PairStress:
    """The stress loss of each pair's account as its underlying's column of the exposures
    moves, all else held: `stress.stress_margin`'s max(0, covariance loss, each named move's
    loss), expanded in that one column x. With e the other columns and a the underlying:
    eᵀΣe + 2x(Σe)_a + x²Σ_aa under the root (correlated assets), Σ|e_j|σ_j + |x|σ_a beside it
    (the others), and each named move's loss −e·shock − x·shock_a."""

    reach: float
    quadratic: np.ndarray
    cross: np.ndarray
    own: np.ndarray
    apart: np.ndarray
    apart_own: np.ndarray
    named: np.ndarray  # scenarios × pairs: one contiguous row per scenario
    named_own: np.ndarray

    @classmethod
    def of(
        cls, exposures: np.ndarray, asset: np.ndarray, model: StressModel, settlement: int
    ) -> "_PairStress":
        """`exposures`: per pair its account's row with the underlying's column at 0; the named
        moves restated in the settlement coin (column `settlement`, −1: none)."""
        covariance = model.correlated_covariance
        apart_vol = np.where(model.correlated, 0.0, model.vol)
        weighted = exposures @ covariance
        rows = np.arange(len(asset))
        # assets × scenarios
        negated_shocks = -in_settlement_coin(model.scenarios.price_shocks, settlement).T
        return cls(
            reach=model.reach,
            quadratic=(weighted * exposures).sum(axis=1),
            cross=weighted[rows, asset],
            own=covariance[asset, asset],
            apart=np.abs(exposures) @ apart_vol,
            apart_own=apart_vol[asset],
            named=np.ascontiguousarray((exposures @ negated_shocks).T),
            named_own=np.ascontiguousarray(negated_shocks[asset].T),
        )

    def loss(self, column: np.ndarray) -> np.ndarray:
        quadratic = self.quadratic + column * (2.0 * self.cross + column * self.own)
        loss = np.sqrt(np.maximum(quadratic, 0.0))
        loss += self.apart
        loss += np.abs(column) * self.apart_own
        loss *= self.reach
        np.maximum(loss, 0.0, out=loss)
        # Row by row: a max over a short inner axis costs several times more.
        for named, own in zip(self.named, self.named_own, strict=True):
            np.maximum(loss, named + column * own, out=loss)
        return loss


def _members(book: Book, positions: np.ndarray, lines: np.ndarray) -> Book:
    """The book of the given positions and holdings alone (accounts as they are)."""
    arrays = {name: getattr(book, name)[positions] for name in POSITION_FIELDS}
    arrays |= {name: getattr(book, name)[lines] for name in COLLATERAL_FIELDS}
    for name, rows in (("pos_owner_quantity", positions), ("col_owner_quantity", lines)):
        values = getattr(book, name)
        arrays[name] = None if values is None else values[rows]
    return replace(book, **arrays)


@dataclass(frozen=True)
class _Book:
    """What every chunk reads: the book at the marks, the stress model, the portfolio accounts'
    pairs."""

    book: Book
    marks: np.ndarray
    asset_prices: np.ndarray
    revaluation: Revaluation
    model: StressModel
    accounts: np.ndarray  # the portfolio accounts
    exposures: np.ndarray  # theirs, accounts × assets
    pair_row: np.ndarray  # per pair, its account's row in `accounts`
    pair_asset: np.ndarray
    positions: np.ndarray  # members, sorted by pair
    position_pair: np.ndarray
    position_start: np.ndarray  # per pair, where its positions start (n_pairs + 1)
    lines: np.ndarray
    line_pair: np.ndarray
    line_start: np.ndarray

    def chunk(self, pair_ids: np.ndarray) -> _Pairs:
        """The pairs `pair_ids` (in any order) and their members."""
        book, revaluation = self.book, self.revaluation
        position_rows, position_pair = group_runs(self.position_start, pair_ids)
        line_rows, line_pair = group_runs(self.line_start, pair_ids)
        positions, lines = self.positions[position_rows], self.lines[line_rows]
        n = len(pair_ids)
        row, asset = self.pair_row[pair_ids], self.pair_asset[pair_ids]
        account = self.accounts[row]
        exposures = self.exposures[row]
        exposures[np.arange(n), asset] = 0.0
        mark = self.marks[book.pos_instrument[positions]]
        side_notional = book.pos_side[positions] * revaluation.notional[positions]
        # The tiered price's scale: the same for every member of a pair (they move together).
        first_member = np.searchsorted(position_pair, np.arange(n))
        tiered_scale = revaluation.liquidation_price[positions[first_member]] / mark[first_member]
        tiered_scale[~(tiered_scale > 0)] = np.nan
        quantity = sum_by(position_pair, book.pos_side[positions] * book.pos_quantity[positions], n)
        quantity += sum_by(line_pair, book.col_quantity[lines], n)
        line_value = revaluation.collateral_line_value[lines]
        balance = revaluation.margin_balance[account]
        without_members = balance - sum_by(position_pair, side_notional, n)
        without_members -= sum_by(line_pair, line_value, n)
        return _Pairs(
            n=n,
            asset=asset,
            balance=balance,
            balance_without_members=without_members,
            tiered=revaluation.account_maintenance_margin[account],
            stress=_PairStress.of(exposures, asset, self.model, book.settlement_asset),
            tiered_scale=tiered_scale,
            quantity=quantity,
            members=_members(book, positions, lines),
            position_pair=position_pair,
            mark=mark,
            side_notional=side_notional,
            maintenance=revaluation.maintenance_margin[positions],
            line_pair=line_pair,
            price=self.asset_prices[book.col_asset[lines]],
        )


def _pairs(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    revaluation: Revaluation,
    model: StressModel,
    portfolio: np.ndarray,
) -> _Book | None:
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

    cells, position_pair = np.unique(position_cell, return_inverse=True)
    pair_of_cell = np.full(n_cells, -1, dtype=np.int64)
    pair_of_cell[cells] = np.arange(len(cells))
    line_pair = pair_of_cell[line_cell]
    lines, line_pair = lines[line_pair >= 0], line_pair[line_pair >= 0]
    position_order = np.argsort(position_pair, kind="stable")
    line_order = np.argsort(line_pair, kind="stable")
    pair_row, pair_asset = np.divmod(cells, n_assets)
    if book.settlement_asset >= 0:
        # Collateral in the settlement coin, as `vector.revalue` values it.
        asset_prices = asset_prices / asset_prices[book.settlement_asset]
    bounds = np.arange(len(cells) + 1)
    return _Book(
        book=book,
        marks=marks,
        asset_prices=asset_prices,
        revaluation=revaluation,
        model=model,
        accounts=accounts,
        exposures=exposures.reshape(len(accounts), n_assets),
        pair_row=pair_row,
        pair_asset=pair_asset,
        positions=positions[position_order],
        position_pair=position_pair[position_order],
        position_start=np.searchsorted(position_pair[position_order], bounds),
        lines=lines[line_order],
        line_pair=line_pair[line_order],
        line_start=np.searchsorted(line_pair[line_order], bounds),
    )


def portfolio_liquidation_prices(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    revaluation: Revaluation,
    model: StressModel,
    portfolio: np.ndarray,
    *,
    workers: int | None = None,
) -> np.ndarray:
    """Every position's liquidation price with the accounts marked in `portfolio` under the
    portfolio scheme: for their cross positions the price of the underlying at which the
    balance meets max(tiered MM, stress loss) (the mark for an account already past it, nan
    where no price reaches it); every other position keeps `revaluation`'s tiered price.
    `revaluation` is the book's at `marks` and `asset_prices`, with its liquidation prices;
    `model` is in the book's asset order. Without a portfolio account's cross position, the
    revaluation's own array is answered (not a copy). Chunks of pairs run on `workers`
    threads (default: one per core)."""
    marks = np.asarray(marks, dtype=float)
    pairs = _pairs(
        book,
        marks,
        np.asarray(asset_prices, dtype=float),
        revaluation,
        model,
        portfolio,
    )
    if pairs is None:
        return revaluation.liquidation_price
    n = len(pairs.pair_row)
    # The model's cached arrays are built here, before the threads share it.
    model.scenarios, model.correlated_covariance  # noqa: B018
    past, far, nowhere = np.empty(n, dtype=bool), np.empty(n), np.empty(n, dtype=bool)

    def set_up(pair_ids: np.ndarray) -> None:
        past[pair_ids], far[pair_ids], nowhere[pair_ids] = pairs.chunk(pair_ids).brackets()

    _run_chunks(set_up, np.arange(n), workers)
    # Only the pairs with a root in their bracket are bisected: an account far from any
    # requirement (often most) costs three evaluations, not fifty.
    scale = np.where(past, 1.0, np.nan)

    def solve(pair_ids: np.ndarray) -> None:
        scale[pair_ids] = pairs.chunk(pair_ids).bisect(far[pair_ids])

    # Chunks of brackets of like width: a few far ones (a tiered price 100× the mark) would
    # otherwise set the count of halvings for thousands of near ones.
    active = np.flatnonzero(~past & ~nowhere)
    _run_chunks(solve, active[np.argsort(np.abs(far[active] - 1.0), kind="stable")], workers)
    prices = revaluation.liquidation_price.copy()
    mark = marks[book.pos_instrument[pairs.positions]]
    prices[pairs.positions] = mark * scale[pairs.position_pair]
    return prices


def _run_chunks(task, pair_ids: np.ndarray, workers: int | None) -> None:
    """`task` over chunks of PAIR_CHUNK of `pair_ids`, on `workers` threads."""
    chunks = [pair_ids[start : start + PAIR_CHUNK] for start in range(0, len(pair_ids), PAIR_CHUNK)]
    run_tasks([partial(task, chunk) for chunk in chunks], workers)

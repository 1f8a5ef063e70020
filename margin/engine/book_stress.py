"""One scenario over the whole book: who falls under maintenance, by how much, and whether the
insurance fund covers the negative equity left behind."""

from dataclasses import dataclass

import numpy as np

from margin.engine.option_stress import HeldOptions, scenario_vol_shocks, with_options
from margin.engine.shocks import shocked_prices
from margin.engine.vector import Book, Revaluation, revalue, sum_by

# Margin-ratio buckets of the run's histogram: [0, 50%), [50%, 80%), ...
RATIO_EDGES = (0.0, 0.5, 0.8, 1.0)
RATIO_BUCKETS = ("below 50%", "50% – 80%", "80% – 100%", "100% and above (or no equity)")


@dataclass(frozen=True)
class Shortfalls:
    """Per account: under maintenance or not, how far below it, and the negative equity."""

    under_maintenance: np.ndarray
    maintenance_shortfall: np.ndarray
    deficit: np.ndarray


@dataclass(frozen=True)
class StressResult:
    accounts: int
    accounts_under_maintenance: int
    maintenance_shortfall: float
    deficit: float
    insurance_fund: float
    coverage: float | None
    ratio_buckets: tuple[int, ...]
    worst_accounts: tuple[int, ...]
    moves: tuple[float, ...]


def cross_hit(revaluation: Revaluation, threshold: float = 1.0) -> np.ndarray:
    """Accounts whose cross pool has margin ratio ≥ threshold, an empty or negative margin
    balance counting as past every threshold (MM > 0 and MM ≥ threshold × balance)."""
    maintenance = revaluation.account_maintenance_margin
    return (maintenance > 0) & (maintenance >= threshold * revaluation.margin_balance)


@dataclass(frozen=True)
class IsolatedPositions:
    """The book's isolated positions alone (a small share of a book; the rest is cross): their
    position rows, maintenance margins and equity (isolated margin plus their own uPnL)."""

    rows: np.ndarray
    maintenance: np.ndarray
    equity: np.ndarray

    def hit(self, threshold: float = 1.0) -> np.ndarray:
        """Those at or past the threshold on their own margin (same rule as the pool)."""
        return (self.maintenance > 0) & (self.maintenance >= threshold * self.equity)


def isolated_positions(book: Book, revaluation: Revaluation) -> IsolatedPositions:
    rows = book.pos_isolated_rows
    return IsolatedPositions(
        rows=rows,
        maintenance=revaluation.maintenance_margin[rows],
        equity=book.pos_isolated_margin[rows] + revaluation.unrealized_pnl[rows],
    )


def shortfalls(book: Book, revaluation: Revaluation) -> Shortfalls:
    """Cross pools and isolated positions under maintenance; an account counts once, with the
    shortfalls of its pool and of its isolated positions added up."""
    n = book.n_accounts
    pool_hit = cross_hit(revaluation)
    isolated = isolated_positions(book, revaluation)
    hit = isolated.hit()
    owner = book.pos_account[isolated.rows]
    under = pool_hit.copy()
    under[owner[hit]] = True
    pool_short = np.where(
        pool_hit, revaluation.account_maintenance_margin - revaluation.margin_balance, 0.0
    )
    position_short = (isolated.maintenance - isolated.equity)[hit]
    return Shortfalls(
        under_maintenance=under,
        maintenance_shortfall=pool_short + sum_by(owner[hit], position_short, n),
        deficit=np.maximum(-revaluation.margin_balance, 0.0)
        + sum_by(owner, np.maximum(-isolated.equity, 0.0), n),
    )


def ratio_buckets(revaluation: Revaluation) -> tuple[int, ...]:
    """How many accounts with positions fall in each margin-ratio bucket (no equity: the last)."""
    has_positions = revaluation.account_maintenance_margin > 0
    ratio = np.where(np.isnan(revaluation.margin_ratio), np.inf, revaluation.margin_ratio)
    bucket = np.searchsorted(np.array(RATIO_EDGES[1:]), ratio[has_positions], side="right")
    return tuple(int(c) for c in np.bincount(bucket, minlength=len(RATIO_BUCKETS)))


def coverage(insurance_fund: float, deficit: float) -> float | None:
    return None if deficit <= 0 else insurance_fund / deficit


def stressed_revaluation(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    moves: np.ndarray,
    *,
    held: HeldOptions | None = None,
    vol_shocks: np.ndarray | None = None,
) -> Revaluation:
    """The book after `moves`: linear positions and holdings at the shocked prices, options
    by Black-76 at the shocked forward and vol (`vol_shocks`, by default the library's rule of
    `margin.engine.option_stress`), accounts holding options margined by the grid there.
    `moves` may run on past the book's assets over the option-only underlyings of `held`."""
    moves = np.asarray(moves, dtype=float)
    shocked_marks, shocked_assets = shocked_prices(
        book, marks, asset_prices, moves[: book.n_assets]
    )
    revaluation = revalue(book, shocked_marks, shocked_assets, liquidation_prices=False)
    if held is None:
        return revaluation
    vol_shocks = scenario_vol_shocks(moves) if vol_shocks is None else vol_shocks
    market = held.shocked(moves, vol_shocks, book)
    return with_options(revaluation, held, shocked_marks, market)[0]


def stress_book(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    moves: np.ndarray,
    *,
    insurance_fund: float,
    worst: int = 20,
    held: HeldOptions | None = None,
) -> StressResult:
    """Revalue the book with every asset moved by `moves` and measure the damage; the options
    `held` beside it revalued in full at the shocked forwards and vols."""
    revaluation = stressed_revaluation(book, marks, asset_prices, moves, held=held)
    found = shortfalls(book, revaluation)
    total_deficit = float(found.deficit.sum())
    hit = np.flatnonzero(found.under_maintenance)
    worst_first = hit[np.argsort(-found.maintenance_shortfall[hit], kind="stable")][:worst]
    return StressResult(
        accounts=book.n_accounts,
        accounts_under_maintenance=int(hit.size),
        maintenance_shortfall=float(found.maintenance_shortfall.sum()),
        deficit=total_deficit,
        insurance_fund=insurance_fund,
        coverage=coverage(insurance_fund, total_deficit),
        ratio_buckets=ratio_buckets(revaluation),
        worst_accounts=tuple(int(a) for a in worst_first),
        moves=tuple(float(m) for m in moves),
    )

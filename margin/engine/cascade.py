"""A liquidation cascade: shock → liquidate what falls under maintenance → the liquidation
orders move the price through the market's depth → revalue → again, until nothing more falls.

A liquidated cross pool has all its cross positions closed, an isolated position under its own
maintenance is closed alone (the simple, pessimistic model: no partial liquidation). Closing a
long sells, closing a short buys; each asset moves by −1 % for every `depth` USD of net selling
of the instruments on it (a linear order book), its instruments and its collateral value with
it. The negative equity of what is liquidated is drawn from the insurance fund.

Options (`held`) ride along in full: each round prices every option with Black-76 at the
forward moved as far as its underlying has moved since the start (the shock and every round's
impact) and at the scenario's shocked vol, and margins its account by the grid there
(`margin.engine.option_stress`). A liquidated pool's options close with it; unwinding them
sells their dollar delta through the underlying's book, as closing the perpetual would.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from margin.engine.book_stress import cross_hit, isolated_positions
from margin.engine.option_stress import (
    HeldOptions,
    option_sold_by_asset,
    scenario_vol_shocks,
    with_options,
)
from margin.engine.shocks import FLOOR_MOVE, shocked_prices
from margin.engine.vector import POSITION_FIELDS, Book, revalue


@dataclass(frozen=True)
class CascadeRound:
    number: int
    accounts_liquidated: int
    positions_closed: int
    liquidated_notional: float
    deficit: float
    insurance_used: float
    insurance_left: float
    prices_before: tuple[float, ...]  # the prices the round liquidated at
    asset_prices: tuple[float, ...]  # after its orders moved them
    liquidated_accounts: tuple[int, ...]


@dataclass(frozen=True)
class CascadeResult:
    rounds: tuple[CascadeRound, ...]

    @property
    def accounts_liquidated(self) -> int:
        return sum(r.accounts_liquidated for r in self.rounds)

    @property
    def insurance_used(self) -> float:
        return sum(r.insurance_used for r in self.rounds)


def without_positions(book: Book, closed: np.ndarray) -> Book:
    """The book with the closed positions taken out (collateral untouched)."""
    kept = ~closed
    taken = {name: getattr(book, name)[kept] for name in POSITION_FIELDS}
    if book.pos_owner_quantity is not None:
        # What the owners held before the round: the add-on and the owner's bracket of what is
        # left stay at least as large as the market saw them, never smaller.
        taken["pos_owner_quantity"] = book.pos_owner_quantity[kept]
    return replace(book, **taken)


def impact_moves(
    book: Book,
    closed: np.ndarray,
    notional: np.ndarray,
    depth: np.ndarray,
    *,
    also_sold: np.ndarray | None = None,
) -> np.ndarray:
    """Each asset's move from closing the positions: −1 % per `depth[asset]` USD net sold
    (`also_sold`: USD per asset sold besides, by closing options)."""
    asset = book.instrument_asset[book.pos_instrument[closed]]
    sold = np.bincount(
        asset,
        weights=book.pos_side[closed] * notional[closed],
        minlength=len(depth),
    ).astype(float)  # bincount answers int64 when nothing is closed
    if also_sold is not None:
        sold += also_sold
    moves = np.divide(-0.01 * sold, depth, out=np.zeros_like(sold), where=depth > 0)
    return np.maximum(moves, FLOOR_MOVE)


def simulate_cascade(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    moves: np.ndarray,
    *,
    depth: np.ndarray,
    max_rounds: int,
    insurance_fund: float,
    on_round: Callable[[CascadeRound], None] | None = None,
    held: HeldOptions | None = None,
) -> CascadeResult:
    """Run rounds from the shocked prices until a round liquidates nothing or `max_rounds`.

    `depth[asset]` is the USD notional that moves that asset's price by 1 % (0: no impact).
    Round n liquidates at round n's prices; its orders set round n + 1's prices. `held`: the
    book's options, revalued in full each round.
    """
    start_prices = np.asarray(asset_prices, dtype=float)
    vol_shocks = scenario_vol_shocks(moves)
    marks, asset_prices = shocked_prices(book, marks, asset_prices, moves)
    depth = np.asarray(depth, dtype=float)
    fund = float(insurance_fund)
    rounds: list[CascadeRound] = []
    for number in range(1, max_rounds + 1):
        revaluation = revalue(book, marks, asset_prices, liquidation_prices=False)
        options_closed = option_sold = None
        if held is not None:
            market = held.shocked(_moved_since(start_prices, asset_prices), vol_shocks, book)
            revaluation, grid = with_options(revaluation, held, marks, market)
        pool_hit = cross_hit(revaluation)
        if held is not None:
            options_closed = pool_hit[held.options.positions.account]
            option_sold = option_sold_by_asset(grid, held, market, options_closed, book.n_assets)
        isolated = isolated_positions(book, revaluation)
        position_hit = isolated.hit()
        closed = ~book.pos_isolated & pool_hit[book.pos_account]
        closed[isolated.rows[position_hit]] = True
        deficit = float(
            np.maximum(-revaluation.margin_balance[pool_hit], 0.0).sum()
            + np.maximum(-isolated.equity[position_hit], 0.0).sum()
        )
        used = min(fund, deficit)
        fund -= used
        accounts = np.union1d(
            np.flatnonzero(pool_hit), book.pos_account[isolated.rows[position_hit]]
        )
        step = impact_moves(book, closed, revaluation.notional, depth, also_sold=option_sold)
        before = tuple(float(p) for p in asset_prices)
        marks, asset_prices = (
            marks * (1.0 + step[book.instrument_asset]),
            asset_prices * (1.0 + step),
        )
        found = CascadeRound(
            number=number,
            accounts_liquidated=int(accounts.size),
            positions_closed=int(closed.sum())
            + (0 if options_closed is None else int(options_closed.sum())),
            liquidated_notional=float(revaluation.notional[closed].sum()),
            deficit=deficit,
            insurance_used=used,
            insurance_left=fund,
            prices_before=before,
            asset_prices=tuple(float(p) for p in asset_prices),
            liquidated_accounts=tuple(int(a) for a in accounts),
        )
        rounds.append(found)
        if on_round is not None:
            on_round(found)
        if not accounts.size:
            break
        book = without_positions(book, closed)
        if held is not None:
            held = held.after_liquidation(book, pool_hit)
    return CascadeResult(rounds=tuple(rounds))


def _moved_since(start: np.ndarray, now: np.ndarray) -> np.ndarray:
    """Each asset's relative move from `start` to `now` (0 where the start has no price)."""
    return np.divide(now, start, out=np.ones_like(now), where=start > 0) - 1.0

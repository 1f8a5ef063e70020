"""Benchmark: `python -m margin.bench.engine --positions N --accounts M`.

Builds a deterministic random book on the demo market (real Binance bracket tables and scaled
ones, multi-asset collateral with haircut tiers, credit tiers, some isolated positions, a few
borrowed balances), then times

- one full vectorized revaluation: every figure of every position and account, including
  each position's liquidation and bankruptcy price, and the stress margin: the closed-form
  covariance loss beside the named single-asset moves (best of several runs; the stress model
  is built once beforehand, as the revaluation job builds it once per return period);
- the Decimal reference doing the same work on a sample of accounts holding at least 2,000
  positions: `quote_account`, then `account_stress` with the same model (its named moves
  converted to Decimal beforehand, as the vectorized set is built beforehand);
- for comparison, both engines without the stress margin (`revalue` against `quote_account`).

With `--portfolio-share 0.05` (the default) one account in twenty is under the portfolio scheme:
the vectorized revaluation also solves its cross positions' liquidation prices where the
balance meets max(tiered MM, stress loss) (`margin.engine.portfolio_prices`), the reference
does the same by its Decimal bisection (`scheme.portfolio_liquidation_price`), and those prices
are the ones compared.

With `--option-share 0.2` one position in five is an option on BTC or ETH (`margin.bench.options`),
and the vectorized revaluation also revalues every option series under the 24 scenarios of
the portfolio grid, sums every option account's grid (`options_vector.portfolio_grid`) and revalues
every option under the stress margin's named moves with their vol shock (`option_stress`).

The last line is `positions=N accounts=M vector_s=… reference_us_per_position=… speedup=…
peak_mb=…`; speedup = reference time per position ÷ vectorized time per position, peak_mb the
process's peak resident memory.
"""

import argparse
import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from margin.bench.options import option_inputs, random_option_book
from margin.engine.demo import ASSETS, CREDIT_TIERS, INSTRUMENTS
from margin.engine.option_stress import HeldOptions
from margin.engine.options import GRID
from margin.engine.options_vector import PortfolioGrid, portfolio_grid
from margin.engine.portfolio_prices import portfolio_liquidation_prices
from margin.engine.reference import AccountQuote, quote_account
from margin.engine.scheme import portfolio_liquidation_price
from margin.engine.stress import (
    AccountStress,
    StressModel,
    StressResult,
    account_stress,
    decimal_shocks,
    ewma_covariance,
    stress_margin,
)
from margin.engine.types import CROSS, ISOLATED, AccountInput, CollateralLine, PositionInput
from margin.engine.vector import Book, BracketMatrix, HaircutMatrix, Revaluation, revalue

HISTORY_DAYS = 250
# Share of positions per demo instrument, in INSTRUMENTS order (BTC and ETH trade most).
INSTRUMENT_WEIGHTS = (0.35, 0.25, 0.15, 0.1, 0.1, 0.05)
ISOLATED_SHARE = 0.08
BORROWING_SHARE = 0.03
CRYPTO_COLLATERAL_SHARE = {"BTC": 0.35, "ETH": 0.2, "SOL": 0.1}
CORRELATION = 0.6
# The stress model's σ floor of each demo asset: this share of the daily volatility its
# history is drawn with.
VOL_FLOOR_SHARE = 0.5


@dataclass(frozen=True)
class DemoBook:
    book: Book
    marks: np.ndarray
    asset_prices: np.ndarray
    price_history: np.ndarray
    credit_tier: np.ndarray


def random_book(n_positions: int, n_accounts: int, *, seed: int = 7) -> DemoBook:
    """A deterministic book of `n_positions` positions over `n_accounts` accounts (each holding
    at least one while positions last), grouped by account as a database returns them."""
    rng = np.random.default_rng(seed)
    asset_names = tuple(ASSETS)
    asset_prices = np.array([float(price) for price, _, _ in ASSETS.values()])
    instrument_asset = np.array(
        [asset_names.index(underlying) for underlying, _ in INSTRUMENTS.values()]
    )
    brackets = BracketMatrix.from_tables([table for _, table in INSTRUMENTS.values()])
    marks = asset_prices[instrument_asset]

    credit_tier = rng.integers(0, len(CREDIT_TIERS), n_accounts)
    haircut_scale = np.array([float(t.haircut_scale) for t in CREDIT_TIERS])[credit_tier]
    mm_scale = np.array([float(t.mm_scale) for t in CREDIT_TIERS])[credit_tier]

    owners = np.arange(min(n_accounts, n_positions))
    extra = rng.integers(0, n_accounts, max(0, n_positions - n_accounts))
    pos_account = np.sort(np.concatenate([owners, extra]))
    pos_instrument = rng.choice(len(INSTRUMENTS), n_positions, p=INSTRUMENT_WEIGHTS)
    mark = marks[pos_instrument]
    notional = np.minimum(np.exp(rng.normal(np.log(5000.0), 1.6, n_positions)), 2e8)
    quantity = notional / mark
    side = rng.choice(np.array([-1.0, 1.0]), n_positions)
    entry = mark * np.exp(rng.normal(0.0, 0.03, n_positions))
    bracket = brackets.lookup(pos_instrument, notional)
    leverage = np.minimum(
        rng.integers(1, 21, n_positions), brackets.max_leverage[pos_instrument, bracket]
    )
    isolated = rng.random(n_positions) < ISOLATED_SHARE
    initial = notional / leverage
    isolated_margin = np.where(isolated, initial * rng.uniform(1.05, 1.6, n_positions), 0.0)

    # Cash sized to the cross initial margin so that some accounts sit near liquidation.
    cross_initial = np.bincount(
        pos_account, weights=np.where(isolated, 0.0, initial), minlength=n_accounts
    )
    usdt = cross_initial * rng.uniform(0.4, 3.0, n_accounts) + rng.exponential(2000.0, n_accounts)
    col_account, col_asset, col_quantity = (
        [np.arange(n_accounts)],
        [np.zeros(n_accounts, int)],
        [usdt],
    )
    for asset, share in CRYPTO_COLLATERAL_SHARE.items():
        holders = np.flatnonzero(rng.random(n_accounts) < share)
        index = asset_names.index(asset)
        col_account.append(holders)
        col_asset.append(np.full(len(holders), index))
        col_quantity.append(
            np.exp(rng.normal(np.log(20000.0), 1.2, len(holders))) / asset_prices[index]
        )
    # A few accounts borrowed cash against BTC: a negative USDT balance backed by a BTC line.
    borrowers = np.flatnonzero(rng.random(n_accounts) < BORROWING_SHARE)
    btc_value = np.exp(rng.normal(np.log(50000.0), 1.0, len(borrowers)))
    usdt[borrowers] = -0.5 * btc_value
    col_account.append(borrowers)
    col_asset.append(np.full(len(borrowers), asset_names.index("BTC")))
    col_quantity.append(btc_value / asset_prices[asset_names.index("BTC")])
    col_account_all = np.concatenate(col_account)
    order = np.argsort(col_account_all, kind="stable")

    book = Book(
        n_accounts=n_accounts,
        haircut_scale=haircut_scale,
        mm_scale=mm_scale,
        pos_account=pos_account,
        pos_instrument=pos_instrument,
        pos_side=side,
        pos_quantity=quantity,
        pos_entry_price=entry,
        pos_leverage=leverage.astype(np.float64),
        pos_isolated=isolated,
        pos_isolated_margin=isolated_margin,
        col_account=col_account_all[order],
        col_asset=np.concatenate(col_asset)[order],
        col_quantity=np.concatenate(col_quantity)[order],
        brackets=brackets,
        haircuts=HaircutMatrix.from_tiers([tiers for _, _, tiers in ASSETS.values()]),
        instrument_asset=instrument_asset,
        asset_names=asset_names,
        instrument_names=tuple(INSTRUMENTS),
    )
    return DemoBook(book, marks, asset_prices, _price_history(rng, asset_prices), credit_tier)


def _price_history(rng: np.random.Generator, asset_prices: np.ndarray) -> np.ndarray:
    """Daily closes ending at today's prices: correlated lognormal moves at each asset's demo
    volatility (the cash asset uncorrelated)."""
    vol = np.array([daily_vol for _, daily_vol, _ in ASSETS.values()])
    correlation = np.full((len(vol), len(vol)), CORRELATION)
    correlation[0, :] = correlation[:, 0] = 0.0
    np.fill_diagonal(correlation, 1.0)
    returns = (
        rng.standard_normal((HISTORY_DAYS - 1, len(vol))) @ np.linalg.cholesky(correlation).T * vol
    )
    path = np.vstack([np.zeros(len(vol)), np.cumsum(returns, axis=0)])
    return asset_prices * np.exp(path - path[-1])


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def account_inputs(demo: DemoBook, accounts: Sequence[int]) -> list[AccountInput]:
    """The reference engine's inputs for some accounts of a demo book (floats as their shortest
    decimal)."""
    book = demo.book
    assets = list(ASSETS.items())
    instruments = list(INSTRUMENTS.items())
    position_start = np.searchsorted(book.pos_account, accounts, side="left")
    position_end = np.searchsorted(book.pos_account, accounts, side="right")
    line_start = np.searchsorted(book.col_account, accounts, side="left")
    line_end = np.searchsorted(book.col_account, accounts, side="right")
    inputs = []
    for n, account in enumerate(accounts):
        positions = []
        for p in range(position_start[n], position_end[n]):
            symbol, (underlying, table) = instruments[book.pos_instrument[p]]
            isolated = bool(book.pos_isolated[p])
            positions.append(
                PositionInput(
                    id=f"{symbol}#{p}",
                    side=int(book.pos_side[p]),
                    quantity=_decimal(book.pos_quantity[p]),
                    entry_price=_decimal(book.pos_entry_price[p]),
                    mark_price=_decimal(demo.marks[book.pos_instrument[p]]),
                    leverage=_decimal(book.pos_leverage[p]),
                    brackets=table,
                    margin_mode=ISOLATED if isolated else CROSS,
                    isolated_margin=_decimal(book.pos_isolated_margin[p]) if isolated else None,
                    underlying=underlying,
                )
            )
        lines = []
        for c in range(line_start[n], line_end[n]):
            asset, (price, _, tiers) = assets[book.col_asset[c]]
            lines.append(
                CollateralLine(
                    asset=asset,
                    quantity=_decimal(book.col_quantity[c]),
                    price=price,
                    haircut_tiers=tiers,
                )
            )
        inputs.append(
            AccountInput(
                collateral=tuple(lines),
                positions=tuple(positions),
                credit_tier=CREDIT_TIERS[demo.credit_tier[account]],
            )
        )
    return inputs


def _portfolio_prices(account: AccountInput, quote: AccountQuote, model: StressModel) -> list:
    """The reference's liquidation price of each position of a portfolio-scheme account: the
    bisection's for a cross one, the tiered one for an isolated one."""
    return [
        row.liquidation_price
        if position.is_isolated
        else portfolio_liquidation_price(account, model, position, row.liquidation_price).price
        for position, row in zip(account.positions, quote.positions, strict=True)
    ]


def best_seconds(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The best wall time and the best CPU time (all threads) of `repeat` runs."""
    wall = cpu = math.inf
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - start_wall)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def reference_sample(demo: DemoBook, minimum_positions: int, *, seed: int) -> list[int]:
    """Accounts drawn at random (seeded) until they hold `minimum_positions` positions."""
    book = demo.book
    counts = np.bincount(book.pos_account, minlength=book.n_accounts)
    shuffled = np.random.default_rng(seed).permutation(book.n_accounts)
    enough = int(np.searchsorted(np.cumsum(counts[shuffled]), minimum_positions)) + 1
    return sorted(shuffled[:enough].tolist())


def _agrees(vector_value: float, reference_value: Decimal | None, floor: float) -> bool:
    """Equal within 1e-9 relative (`floor` × 1e-9 near 0); nan matches None."""
    expected = math.nan if reference_value is None else float(reference_value)
    if math.isnan(expected) or math.isnan(vector_value):
        return math.isnan(expected) and math.isnan(vector_value)
    return abs(vector_value - expected) <= 1e-9 * max(abs(expected), floor)


def disagreements(
    demo: DemoBook,
    accounts: Sequence[int],
    references: Sequence[tuple[AccountQuote, AccountStress, list | None]],
    result: Revaluation,
    stress: StressResult,
    liquidation: np.ndarray,
    grid: PortfolioGrid | None = None,
    option_account: np.ndarray | None = None,
) -> int:
    """How many sampled figures differ from the reference by more than 1e-9 relative: each
    position's MM, liquidation and bankruptcy price (near 0: 1e-9 of its mark), each account's
    worst scenario loss and risk requirement (near 0: 1e-9 of its gross notional and
    collateral). An account holding options (`grid`) is checked on its grid instead: each
    option's mark, the portfolio MM and IM; its cross rows have no liquidation price there and
    its risk requirement is the scheme's (`margin.engine.scheme`), not the stress module's.
    `liquidation` holds the prices under each account's scheme; a portfolio account's reference
    (the third item, one price per position) is its bisection's."""
    book = demo.book
    # Positions are grouped by account: each account's rows are one run.
    starts = np.searchsorted(book.pos_account, accounts, side="left")
    ends = np.searchsorted(book.pos_account, accounts, side="right")
    wrong = 0
    grid_option_account = option_account if option_account is not None else np.zeros(0)
    runs = zip(accounts, starts, ends, references, strict=True)
    for account, start, end, (quote, reference_stress, portfolio_prices) in runs:
        rows = range(start, end)
        checks = []
        on_grid = quote.portfolio is not None
        for n, (row, position) in enumerate(zip(rows, quote.positions, strict=True)):
            mark = demo.marks[book.pos_instrument[row]]
            checks.append((result.maintenance_margin[row], position.maintenance_margin, 1e-6))
            expected = position.liquidation_price
            if portfolio_prices is not None:
                expected = portfolio_prices[n]
            if not on_grid or book.pos_isolated[row]:
                checks += [
                    (liquidation[row], expected, mark),
                    (result.bankruptcy_price[row], position.bankruptcy_price, mark),
                ]
        gross = float(sum(p.notional for p in quote.positions) + abs(quote.collateral_value))
        checks.append((stress.worst_loss[account], reference_stress.worst_loss, gross))
        if on_grid and grid is not None:
            gross += float(sum(o.quantity * o.mark_price for o in quote.options))
            option_rows = np.flatnonzero(grid_option_account == account)
            checks += [
                (grid.option_mark[row], option.mark_price, gross)
                for row, option in zip(option_rows, quote.options, strict=True)
            ]
            checks += [
                (grid.portfolio_maintenance_margin[account], quote.maintenance_margin, gross),
                (grid.portfolio_initial_margin[account], quote.initial_margin, gross),
            ]
        else:
            checks.append(
                (stress.risk_requirement[account], reference_stress.risk_requirement, gross)
            )
        wrong += sum(not _agrees(*check) for check in checks)
    return wrong


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m margin.bench.engine", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, help="default: positions / 5")
    parser.add_argument(
        "--repeat", type=int, default=5, help="vectorized runs, the best one counts"
    )
    parser.add_argument("--reference-positions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--portfolio-share",
        type=float,
        default=0.05,
        help="share of the accounts under the portfolio margin scheme",
    )
    parser.add_argument(
        "--option-share",
        type=float,
        default=0.0,
        help="share of the positions that are options on BTC and ETH (0.2: one in five)",
    )
    arguments = parser.parse_args(argv)
    n_positions = arguments.positions
    n_accounts = arguments.accounts or max(1, n_positions // 5)
    n_options = round(n_positions * arguments.option_share)

    demo = random_book(n_positions - n_options, n_accounts, seed=arguments.seed)
    options = random_option_book(demo, n_options, seed=arguments.seed + 4) if n_options else None
    vol, cov = ewma_covariance(demo.price_history)
    model = StressModel.build(
        demo.book.asset_names,
        np.array([daily_vol * VOL_FLOOR_SHARE for _, daily_vol, _ in ASSETS.values()]),
        estimated_vol=vol,
        estimated_covariance=cov,
    )
    scenarios = model.scenarios
    portfolio = (
        np.random.default_rng(arguments.seed + 9).random(n_accounts) < arguments.portfolio_share
    )

    def full_revaluation() -> tuple[Revaluation, StressResult, np.ndarray, PortfolioGrid | None]:
        result = revalue(demo.book, demo.marks, demo.asset_prices)
        grid = held = None
        if options is not None:
            option_book, market = options
            grid = portfolio_grid(option_book, demo.marks, market.forwards, market.vols)
            held = HeldOptions(option_book, market)
        stress = stress_margin(
            demo.book, demo.marks, demo.asset_prices, model, revaluation=result, held=held
        )
        liquidation = portfolio_liquidation_prices(
            demo.book, demo.marks, demo.asset_prices, result, model, portfolio
        )
        return result, stress, liquidation, grid

    first_start = time.perf_counter()
    result, stress, liquidation, grid = full_revaluation()
    first_seconds = time.perf_counter() - first_start
    vector_seconds, vector_cpu = best_seconds(full_revaluation, arguments.repeat)
    revalue_seconds, _ = best_seconds(
        lambda: revalue(demo.book, demo.marks, demo.asset_prices), arguments.repeat
    )

    accounts = reference_sample(demo, arguments.reference_positions, seed=arguments.seed)
    inputs = account_inputs(demo, accounts)
    if options is not None:
        inputs = [
            replace(account, options=option_inputs(*options, n))
            for account, n in zip(inputs, accounts, strict=True)
        ]
    sampled = sum(len(account.positions) + len(account.options) for account in inputs)
    shocks = decimal_shocks(scenarios)

    def reference_revaluation() -> list[tuple[AccountQuote, AccountStress, list | None]]:
        quotes = [quote_account(account) for account in inputs]
        return [
            (
                quote,
                account_stress(account, model, shocks=shocks, quote=quote),
                _portfolio_prices(account, quote, model) if portfolio[n] else None,
            )
            for n, account, quote in zip(accounts, inputs, quotes, strict=True)
        ]

    reference_seconds, reference_cpu = best_seconds(reference_revaluation, 3)
    quote_seconds, _ = best_seconds(lambda: [quote_account(account) for account in inputs], 3)
    reference_us = reference_seconds / sampled * 1e6
    vector_us = vector_seconds / n_positions * 1e6
    quote_us, revalue_us = quote_seconds / sampled * 1e6, revalue_seconds / n_positions * 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    differing = disagreements(
        demo,
        accounts,
        reference_revaluation(),
        result,
        stress,
        liquidation,
        grid,
        None if options is None else options[0].positions.account,
    )
    print(
        f"named scenarios={scenarios.n_scenarios} beside the covariance loss "
        f"assets={len(ASSETS)} instruments={len(INSTRUMENTS)}"
    )
    if options is not None:
        option_book = options[0]
        print(
            f"options: {n_options} positions on {len(option_book.series)} series, "
            f"{int(option_book.holds_options.sum())} accounts on the grid "
            f"({len(GRID)} scenarios each underlying), linear positions {demo.book.n_positions}"
        )
    print(
        f"portfolio scheme: {int(portfolio.sum())} accounts, "
        f"{int(np.isin(demo.book.pos_account, np.flatnonzero(portfolio)).sum())} positions "
        "whose liquidation price is bisected"
    )
    print(f"first revaluation, building the book's price-independent arrays: {first_seconds:.4f} s")
    print(
        f"cpu time (steadier when other processes share the cores): vector_cpu_s={vector_cpu:.4f} "
        f"reference_cpu_us_per_position={reference_cpu / sampled * 1e6:.1f}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"without the stress margin (revalue against quote_account): revalue_s="
        f"{revalue_seconds:.4f} quote_us_per_position={quote_us:.1f} "
        f"speedup={quote_us / revalue_us:.0f}"
    )
    print(
        f"reference sample: {len(accounts)} accounts, {sampled} positions; "
        f"{differing} figures differ from the vectorized engine by > 1e-9"
    )
    print(
        f"positions={n_positions} accounts={n_accounts} vector_s={vector_seconds:.4f} "
        f"reference_us_per_position={reference_us:.1f} speedup={reference_us / vector_us:.0f} "
        f"peak_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()

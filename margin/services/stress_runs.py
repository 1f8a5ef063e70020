"""Stress tests of the whole book: the scenario library turned into asset moves from the
database (price history, the parameters in force), run by `margin.engine.book_stress`, and saved."""

import time
from dataclasses import dataclass
from decimal import Decimal
from math import sqrt

import numpy as np

from margin.engine.book_stress import RATIO_BUCKETS, StressResult, stress_book
from margin.engine.events import event_moves, stress_events
from margin.engine.shocks import (
    FLOOR_MOVE,
    correlated_crash,
    depeg,
    replay_moves,
    uniform_shock,
    volatility_scaled_shock,
)
from margin.errors import ApplicationError
from margin.models import ParameterVersion, StressRun
from margin.selectors.book import BookSlice, desk_book, held_options
from margin.selectors.desk import (
    insurance_fund_value,
    latest_complete_tick,
    price_history,
    risk_asset_symbols,
)
from margin.selectors.parameters import parameters_in_force
from margin.selectors.volatility import tick_stress_model

# A replay is measured at this many evenly spaced steps of the stretch, the worst one kept.
REPLAY_STEPS = 8

SCENARIOS = {
    "uniform": "Uniform shock",
    "ewma": "Shock scaled by EWMA volatility",
    "correlated": "Correlated crash (covariance)",
    "depeg": "De-peg of one collateral asset",
    "replay": "Replay of a recorded stretch",
    "event": "Real event (published daily closes)",
}


@dataclass(frozen=True)
class Scenario:
    """A scenario made concrete for one book: its label and one or more rows of asset moves,
    clipped where a price would fall to nothing (the saved run shows the moves applied)."""

    kind: str
    label: str
    moves: np.ndarray  # steps × assets; one row except for a replay

    def __post_init__(self) -> None:
        object.__setattr__(self, "moves", np.maximum(self.moves, FLOOR_MOVE))


def _number(options: dict, name: str, default: float, low: float, high: float) -> float:
    raw = options.get(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError) as error:
        raise ApplicationError(f"{name}: not a number.", extra={name: "Not a number."}) from error
    if not low <= value <= high:
        raise ApplicationError(
            f"{name} must lie within [{low}, {high}].", extra={name: "Out of range."}
        )
    return value


def _volatility(book_slice: BookSlice, version: ParameterVersion):
    """The volatility and covariance of the latest tick's stress model (the same σ and Σ, with
    the same floors, as the traders' stress figures), over the version's stress horizon, in
    book order."""
    tick = latest_complete_tick()
    if tick is None:
        raise ApplicationError("No revaluation yet: the stress model comes with the first tick.")
    model = tick_stress_model(tick, book_slice.book.asset_names)
    days = float(version.stress_horizon_days)
    return model.vol * sqrt(days), model.covariance * days


def _asset_index(book_slice: BookSlice, symbol: str) -> int:
    names = book_slice.book.asset_names
    if symbol not in names:
        raise ApplicationError(f"No holding in {symbol} in the book.", extra={"asset": "Unknown."})
    return names.index(symbol)


def scenario_build(*, book_slice: BookSlice, kind: str, options: dict) -> Scenario:
    """The scenario's asset moves for this book, options validated (moves as fractions)."""
    names = book_slice.book.asset_names
    n = len(names)
    version = parameters_in_force()
    if kind == "uniform":
        move = _number(options, "move", -0.2, -0.95, 2.0)
        moving = risk_asset_symbols()
        held = [i for i, name in enumerate(names) if name not in moving]
        return Scenario(kind, f"Every asset {move:+.0%}", uniform_shock(n, move, held=held)[None])
    if kind in ("ewma", "correlated"):
        k = _number(options, "k_sigma", float(version.stress_k_sigma), 0.5, 20)
        sigma, covariance = _volatility(book_slice, version)
        # Stablecoins and the settlement coin hold still in a market-wide move, as in the
        # uniform shock; their floors are de-peg risk, which the de-peg scenario moves.
        moving = np.array([name in risk_asset_symbols() for name in names])
        sigma, covariance = sigma * moving, covariance * np.outer(moving, moving)
        if kind == "ewma":
            moves = volatility_scaled_shock(sigma, k)
            return Scenario(kind, f"Every asset down {k:g} σ (EWMA)", moves[None])
        return Scenario(kind, f"Correlated crash, {k:g} σ", correlated_crash(covariance, k)[None])
    if kind == "depeg":
        symbol = str(options.get("asset") or "USDC")
        move = _number(options, "move", -0.1, -0.95, 0.0)
        moves = depeg(n, _asset_index(book_slice, symbol), move)
        return Scenario(kind, f"{symbol} de-pegs {move:+.0%}", moves[None])
    if kind == "replay":
        minutes = _number(options, "minutes", 60, 1, 60 * 24 * 30)
        times, path = price_history(names)
        if len(times) < 2:
            raise ApplicationError("No recorded stretch of the market to replay yet.")
        start = times[-1] - np.timedelta64(int(minutes * 60), "s")
        path = path[np.array([t >= start for t in times])]
        steps = replay_moves(path)
        if not len(steps):
            raise ApplicationError("The stretch holds a single price; choose a longer one.")
        picks = np.unique(np.linspace(0, len(steps) - 1, REPLAY_STEPS).round().astype(int))
        return Scenario(kind, f"Replay of the last {minutes:g} minutes", steps[picks])
    if kind == "event":
        events = stress_events()
        name = str(options.get("event") or next(iter(events)))
        if name not in events:
            raise ApplicationError(
                f"No event {name!r} in the library ({', '.join(events)}).",
                extra={"event": "Unknown."},
            )
        event = events[name]
        risky = risk_asset_symbols()
        moving = [symbol in risky for symbol in names]
        days = f"{event.dates[0]} to {event.dates[-1]}"
        return Scenario(kind, f"{event.title} ({days})", event_moves(event, names, moving))
    raise ApplicationError(f"Unknown scenario {kind}.", extra={"scenario": "Unknown."})


def stress_measure(*, book_slice: BookSlice, scenario: Scenario, insurance_fund: float):
    """Every row of the scenario measured, options revalued in full; the worst (largest
    maintenance shortfall) first."""
    held = held_options(book_slice)
    results = [
        stress_book(
            book_slice.book,
            book_slice.marks,
            book_slice.asset_prices,
            moves,
            insurance_fund=insurance_fund,
            held=held,
        )
        for moves in scenario.moves
    ]
    return max(results, key=lambda r: r.maintenance_shortfall), results


def _details(book_slice: BookSlice, worst: StressResult, results: list[StressResult]) -> dict:
    names = book_slice.book.asset_names
    return {
        "moves": dict(zip(names, worst.moves, strict=True)),
        "ratio_buckets": dict(zip(RATIO_BUCKETS, worst.ratio_buckets, strict=True)),
        "worst_accounts": [int(book_slice.account_ids[i]) for i in worst.worst_accounts],
        "steps": [
            {"shortfall": r.maintenance_shortfall, "under": r.accounts_under_maintenance}
            for r in results
        ]
        if len(results) > 1
        else [],
    }


def stress_run_create(*, actor, kind: str, options: dict) -> StressRun:
    """Run one scenario of the library over the whole book and save the run."""
    started = time.perf_counter()
    book_slice = desk_book()
    scenario = scenario_build(book_slice=book_slice, kind=kind, options=options)
    fund = insurance_fund_value()
    worst, results = stress_measure(
        book_slice=book_slice, scenario=scenario, insurance_fund=float(fund)
    )
    return StressRun.objects.create(
        scenario=kind,
        options=options,
        label=scenario.label,
        parameter_version=ParameterVersion.objects.filter(
            number=book_slice.parameter_version
        ).first(),
        created_by=actor,
        accounts=worst.accounts,
        accounts_under_maintenance=worst.accounts_under_maintenance,
        maintenance_shortfall=Decimal(repr(worst.maintenance_shortfall)),
        deficit=Decimal(repr(worst.deficit)),
        insurance_fund=fund,
        coverage=None if worst.coverage is None else Decimal(repr(round(worst.coverage, 9))),
        duration_ms=round((time.perf_counter() - started) * 1000),
        details=_details(book_slice, worst, results),
    )

"""The library of real stress events: published daily closes of named episodes, shipped as data
files (`stress_events/`, sources cited in each), replayed as asset moves over a book.

A point of an episode is a UTC date (that day's close) or a UTC time (`2025-10-10T21:40Z`, an
intraday print a source reports, such as a de-peg's low that no daily close shows). A series
without a cited price at a point (`null`) holds its last earlier one: no number is made up.

A de-peg (`depegs`) is a token priced against what it is pegged to (`USD`, or another asset of
the episode: wBETH against ETH): at its peg, one unit of that, except at the points its source
gives a fraction of it. Its move is its peg's move times that fraction.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from margin.engine.errors import EngineInputError

EVENTS_DIR = Path(__file__).with_name("stress_events")


USD = "USD"
"""The peg of a dollar stablecoin: a unit that never moves."""


@dataclass(frozen=True)
class Depeg:
    """A token pegged to `peg` (USD or a series of the episode) and the fraction of its peg it
    traded at, by point (`StressEvent.dates`); at every other point it is at its peg."""

    peg: str
    fractions: dict[str, float]


@dataclass(frozen=True)
class StressEvent:
    """One episode: its UTC points (dates, or times of intraday prints) and each named asset's
    price at them, oldest first (None: no cited price, the last one holds); its de-pegs."""

    name: str
    title: str
    summary: str
    source: str
    dates: tuple[str, ...]
    closes: dict[str, tuple[float | None, ...]]
    depegs: dict[str, Depeg] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.dates) < 2:
            raise EngineInputError(f"{self.name}.dates", "an episode needs at least two days")
        if not self.closes:
            raise EngineInputError(f"{self.name}.closes", "an episode needs one series")
        for symbol, series in self.closes.items():
            if len(series) != len(self.dates):
                raise EngineInputError(
                    f"{self.name}.closes.{symbol}",
                    f"must hold one close per date ({len(self.dates)})",
                )
            if series[0] is None:
                raise EngineInputError(
                    f"{self.name}.closes.{symbol}", "the first point needs a price to move from"
                )
            given = [price for price in series if price is not None]
            if not all(np.isfinite(given)) or min(given) <= 0:
                raise EngineInputError(f"{self.name}.closes.{symbol}", "closes must be positive")
        for symbol, depeg in self.depegs.items():
            if depeg.peg != USD and depeg.peg not in self.closes:
                raise EngineInputError(
                    f"{self.name}.depegs.{symbol}", f"pegged to {depeg.peg}, which has no series"
                )
            if not set(depeg.fractions) <= set(self.dates):
                raise EngineInputError(
                    f"{self.name}.depegs.{symbol}", "a fraction is given at a point not in dates"
                )
            if not all(0 < fraction <= 1 for fraction in depeg.fractions.values()):
                raise EngineInputError(
                    f"{self.name}.depegs.{symbol}", "a fraction of the peg lies in (0, 1]"
                )

    @property
    def leader(self) -> str:
        """The episode's first series, which assets without one of their own follow."""
        return next(iter(self.closes))

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every asset the episode moves: its series, then its de-pegged tokens."""
        return (*self.closes, *self.depegs)

    def moves(self, symbol: str) -> np.ndarray:
        """The asset's move from the first point at each later one."""
        if symbol in self.depegs:
            depeg = self.depegs[symbol]
            peg = np.zeros(len(self.dates) - 1) if depeg.peg == USD else self.moves(depeg.peg)
            fraction = np.array([depeg.fractions.get(point, 1.0) for point in self.dates[1:]])
            return (1.0 + peg) * fraction - 1.0
        series = np.array(self.closes[symbol], dtype=float)  # None → nan
        for n in range(1, len(series)):
            if np.isnan(series[n]):
                series[n] = series[n - 1]
        return series[1:] / series[0] - 1.0

    def worst_move(self) -> float:
        """The deepest fall of any asset of the episode from the first point."""
        return float(min(self.moves(symbol).min() for symbol in self.symbols))


def load_event(path: Path) -> StressEvent:
    data = json.loads(path.read_text())
    return StressEvent(
        name=data["name"],
        title=data["title"],
        summary=data["summary"],
        source=data["source"],
        dates=tuple(data["dates"]),
        closes={
            symbol: tuple(None if price is None else float(price) for price in series)
            for symbol, series in data["closes"].items()
        },
        depegs={
            symbol: Depeg(
                peg=depeg["peg"],
                fractions={point: float(f) for point, f in depeg["fractions"].items()},
            )
            for symbol, depeg in data.get("depegs", {}).items()
        },
    )


@cache
def stress_events() -> dict[str, StressEvent]:
    """Every shipped episode by name, in date order."""
    events = [load_event(path) for path in sorted(EVENTS_DIR.glob("*.json"))]
    return {event.name: event for event in sorted(events, key=lambda e: e.dates[0])}


def event_moves(
    event: StressEvent, asset_names: Sequence[str], moving: Sequence[bool]
) -> np.ndarray:
    """Days × assets moves of the episode over a book's assets: an asset with a series of its
    own (or a de-peg) takes it, another risk asset (`moving`) the leader's, the rest
    (stablecoins, the settlement coin) hold still."""
    days = len(event.dates) - 1
    moves = np.zeros((days, len(asset_names)))
    leader = event.moves(event.leader)
    for column, (name, risk) in enumerate(zip(asset_names, moving, strict=True)):
        if name in event.symbols:
            moves[:, column] = event.moves(name)
        elif risk:
            moves[:, column] = leader
    return moves

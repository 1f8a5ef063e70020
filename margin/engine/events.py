"""The library of real stress events: published daily closes of named episodes, shipped as data
files (`stress_events/`, sources cited in each), replayed as asset moves over a book."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from margin.engine.errors import EngineInputError

EVENTS_DIR = Path(__file__).with_name("stress_events")


@dataclass(frozen=True)
class StressEvent:
    """One episode: its UTC dates and each named asset's daily close on them, oldest first."""

    name: str
    title: str
    summary: str
    source: str
    dates: tuple[str, ...]
    closes: dict[str, tuple[float, ...]]

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
            if not all(np.isfinite(series)) or min(series) <= 0:
                raise EngineInputError(f"{self.name}.closes.{symbol}", "closes must be positive")

    @property
    def leader(self) -> str:
        """The episode's first series, which assets without one of their own follow."""
        return next(iter(self.closes))

    def moves(self, symbol: str) -> np.ndarray:
        """The asset's move from the first close at each later day."""
        series = np.array(self.closes[symbol])
        return series[1:] / series[0] - 1.0

    def worst_move(self) -> float:
        """The deepest fall of any named asset from the first close."""
        return float(min(self.moves(symbol).min() for symbol in self.closes))


def load_event(path: Path) -> StressEvent:
    data = json.loads(path.read_text())
    return StressEvent(
        name=data["name"],
        title=data["title"],
        summary=data["summary"],
        source=data["source"],
        dates=tuple(data["dates"]),
        closes={symbol: tuple(map(float, series)) for symbol, series in data["closes"].items()},
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
    own takes it, another risk asset (`moving`) the leader's, the rest (stablecoins, the
    settlement coin) hold still."""
    days = len(event.dates) - 1
    moves = np.zeros((days, len(asset_names)))
    leader = event.moves(event.leader)
    for column, (name, risk) in enumerate(zip(asset_names, moving, strict=True)):
        if name in event.closes:
            moves[:, column] = event.moves(name)
        elif risk:
            moves[:, column] = leader
    return moves

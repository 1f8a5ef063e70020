"""The portfolio grid of an account as the pages draw it: per underlying, the P&L of each of
the 24 scenarios (−weighted loss, `margin.engine.options.underlying_risk`) laid out as a heat
map — the regular scenarios as vol shock × spot shock, the tail moves in a row — with the
scenario that sets the scan risk marked. Shared by the trader's options page and the desk's
account review."""

import math
from dataclasses import dataclass
from decimal import Decimal

from margin.engine.options import GRID, PortfolioMargin, UnderlyingRisk

HEAT_LEVELS = 5


@dataclass(frozen=True)
class MatrixCell:
    spot_shock: Decimal
    vol_shock: Decimal
    weight: Decimal
    pnl: Decimal  # −(weighted loss): what the account makes in the scenario
    heat: str  # "loss-3", "gain-1", "" at 0
    worst: bool


@dataclass(frozen=True)
class UnderlyingMatrix:
    risk: UnderlyingRisk
    spot_shocks: list[Decimal]
    rows: list[tuple[Decimal, list[MatrixCell | None]]]  # (vol shock, a cell per spot shock)
    tail: list[MatrixCell]

    @property
    def worst(self) -> MatrixCell:
        cells = [c for _, row in self.rows for c in row if c] + self.tail
        return next(c for c in cells if c.worst)


def _heat(pnl: Decimal, largest: Decimal) -> str:
    if not pnl or not largest:
        return ""
    level = min(HEAT_LEVELS, max(1, math.ceil(HEAT_LEVELS * float(abs(pnl) / largest))))
    return f"{'loss' if pnl < 0 else 'gain'}-{level}"


def risk_matrices(portfolio: PortfolioMargin | None) -> list[UnderlyingMatrix]:
    """One heat map per underlying of the grid; none for an account off the grid."""
    if portfolio is None:
        return []
    matrices = []
    for risk in portfolio.underlyings:
        largest = max((abs(loss) for loss in risk.losses), default=Decimal(0))
        cells = [
            MatrixCell(
                spot_shock=scenario.spot_shock,
                vol_shock=scenario.vol_shock,
                weight=scenario.weight,
                pnl=loss.copy_negate(),
                heat=_heat(loss.copy_negate(), largest),
                worst=n == risk.worst_scenario,
            )
            for n, (scenario, loss) in enumerate(zip(GRID, risk.losses, strict=True))
        ]
        regular = [c for c in cells if c.weight == 1]
        spots = sorted({c.spot_shock for c in regular})
        vols = sorted({c.vol_shock for c in regular}, reverse=True)
        by_key = {(c.vol_shock, c.spot_shock): c for c in regular}
        matrices.append(
            UnderlyingMatrix(
                risk=risk,
                spot_shocks=spots,
                rows=[(v, [by_key.get((v, x)) for x in spots]) for v in vols],
                tail=[c for c in cells if c.weight != 1],
            )
        )
    return matrices

"""The recalibration's published evidence: the backtest of margin coverage that the latest
recalibration proposal carries, shaped as the chart and table of the proposal page and
`/disclosure/`."""

from dataclasses import dataclass

from margin.models import Proposal

RECALIBRATION_USERNAME = "recalibration"
"""The service account that drafts recalibration proposals."""

CHART_FLOOR = 0.9
"""Coverage below this is drawn at the chart's left edge (a 99 % target lives near the top)."""


@dataclass(frozen=True)
class BacktestSide:
    rate: str
    observations: int
    exceedances: int
    coverage: float
    kupiec_p_value: float | None
    passes: bool

    @property
    def bar(self) -> float:
        """The coverage's bar length in percent of the chart (CHART_FLOOR to 1)."""
        return round(max(0.0, min(1.0, (self.coverage - CHART_FLOOR) / (1 - CHART_FLOOR))) * 100, 2)


@dataclass(frozen=True)
class BacktestRow:
    instrument: str
    current: BacktestSide | None
    proposed: BacktestSide | None

    @property
    def sides(self) -> list[tuple[str, BacktestSide | None]]:
        return [("in force", self.current), ("proposed", self.proposed)]


@dataclass(frozen=True)
class Backtest:
    confidence: float
    horizon_s: float
    rows: list[BacktestRow]

    @property
    def target_bar(self) -> float:
        return round((self.confidence - CHART_FLOOR) / (1 - CHART_FLOOR) * 100, 2)


def _side(values: dict) -> BacktestSide | None:
    if not values:
        return None
    return BacktestSide(
        rate=values["rate"],
        observations=int(values["observations"]),
        exceedances=int(values["exceedances"]),
        coverage=float(values["coverage"]),
        kupiec_p_value=values.get("kupiec_p_value"),
        passes=bool(values.get("passes")),
    )


def backtest_of(impact: dict | None) -> Backtest | None:
    """The backtest a proposal's impact carries, or None (a proposal typed by hand has none)."""
    if not impact or not impact.get("backtest"):
        return None
    policy = impact.get("policy", {})
    return Backtest(
        confidence=float(policy.get("confidence", 0.99)),
        horizon_s=float(policy.get("close_out_horizon_s", 0)),
        rows=[
            BacktestRow(
                instrument=row["instrument"],
                current=_side(row.get("current", {})),
                proposed=_side(row.get("proposed", {})),
            )
            for row in impact["backtest"]
        ],
    )


def latest_recalibration() -> Proposal | None:
    """The newest recalibration proposal, whatever became of it."""
    return (
        Proposal.objects.filter(
            kind=Proposal.Kind.PARAMETER_CHANGE, proposer__username=RECALIBRATION_USERNAME
        )
        .order_by("-pk")
        .first()
    )

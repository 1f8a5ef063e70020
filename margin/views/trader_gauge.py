"""The margin-ratio gauge as SVG geometry: the CSP allows no inline style, so the bar's length,
the coloured zones and the threshold marks are SVG attributes computed here, on a scale of
`WIDTH` user units (the SVG's viewBox)."""

from dataclasses import dataclass
from decimal import Decimal

from margin.models import AccountState

# The scale runs a quarter past liquidation so that the liquidation mark is not on the edge.
SCALE_PAST_LIQUIDATION = Decimal("1.25")
WIDTH = Decimal(400)


@dataclass(frozen=True)
class Thresholds:
    warning: Decimal
    margin_call: Decimal
    liquidation: Decimal

    def level(self, ratio: Decimal | None) -> str:
        """The state the ratio alone points to (the job adds hysteresis before it moves one)."""
        if ratio is None or ratio >= self.liquidation:
            return AccountState.LIQUIDATION
        if ratio >= self.margin_call:
            return AccountState.MARGIN_CALL
        if ratio >= self.warning:
            return AccountState.WARNING
        return AccountState.HEALTHY


@dataclass(frozen=True)
class Gauge:
    """x positions and widths in user units; each zone runs from its threshold to the next."""

    ratio: Decimal | None
    level: str
    width: Decimal
    bar_width: Decimal
    warning_x: Decimal
    margin_call_x: Decimal
    liquidation_x: Decimal

    @property
    def warning_zone(self) -> Decimal:
        return self.margin_call_x - self.warning_x

    @property
    def margin_call_zone(self) -> Decimal:
        return self.liquidation_x - self.margin_call_x

    @property
    def liquidation_zone(self) -> Decimal:
        return self.width - self.liquidation_x


def _x(value: Decimal, top: Decimal) -> Decimal:
    return min(WIDTH, max(Decimal(0), value / top * WIDTH)).quantize(Decimal("0.01"))


def ratio_gauge(ratio: Decimal | None, thresholds: Thresholds) -> Gauge:
    """A full bar when there is no ratio: the margin balance is gone."""
    top = thresholds.liquidation * SCALE_PAST_LIQUIDATION
    return Gauge(
        ratio=ratio,
        level=thresholds.level(ratio),
        width=WIDTH,
        bar_width=_x(top if ratio is None else ratio, top),
        warning_x=_x(thresholds.warning, top),
        margin_call_x=_x(thresholds.margin_call, top),
        liquidation_x=_x(thresholds.liquidation, top),
    )

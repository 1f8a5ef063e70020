"""The margin-ratio gauge as SVG geometry: the CSP allows no inline style, so the bar's length,
the coloured zones and the threshold marks are SVG attributes computed here, on a scale of
`WIDTH` user units (the SVG's viewBox)."""

from dataclasses import dataclass
from decimal import Decimal

from margin.engine.reference import AccountQuote
from margin.engine.states import LEVEL, LIQUIDATION, Thresholds
from margin.engine.types import ISOLATED
from margin.vocabulary import AccountState

# The scale runs a quarter past liquidation so that the liquidation mark is not on the edge.
SCALE_PAST_LIQUIDATION = Decimal("1.25")
WIDTH = Decimal(400)


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


def ratio_gauge(ratio: Decimal | None, thresholds: Thresholds, *, at_risk: bool = True) -> Gauge:
    """A full bar when there is no ratio and a maintenance margin to meet (the margin balance
    is gone); an empty bar when there is neither (nothing held, nothing at risk)."""
    top = thresholds.liquidation * SCALE_PAST_LIQUIDATION
    empty = top if at_risk else Decimal(0)
    length = empty if ratio is None else ratio
    return Gauge(
        ratio=ratio,
        level=thresholds.level(ratio, at_risk=at_risk),
        width=WIDTH,
        bar_width=_x(length, top),
        warning_x=_x(thresholds.warning, top),
        margin_call_x=_x(thresholds.margin_call, top),
        liquidation_x=_x(thresholds.liquidation, top),
    )


def quote_gauge(quote: AccountQuote, thresholds: Thresholds) -> Gauge:
    """The cross pool's gauge of a quote: at risk when the pool has a maintenance margin."""
    return ratio_gauge(quote.margin_ratio, thresholds, at_risk=quote.maintenance_margin > 0)


@dataclass(frozen=True)
class Verdict:
    """The worst state the account's figures point to, the cross pool and each isolated
    position on its own margin (Binance: an isolated position is liquidated alone when its
    own margin ratio reaches 100%), and which isolated positions are past liquidation."""

    level: str
    pool_level: str
    isolated_past_liquidation: tuple[str, ...]

    @property
    def level_label(self) -> str:
        return AccountState(self.level).label


def account_verdict(
    quote: AccountQuote, thresholds: Thresholds, symbols: dict[str, str]
) -> Verdict:
    """`symbols` names each position row by its engine id."""
    pool_level = quote_gauge(quote, thresholds).level
    levels = [pool_level]
    past = []
    for row in quote.positions:
        if row.margin_mode != ISOLATED:
            continue
        level = thresholds.level(row.isolated_margin_ratio, at_risk=row.maintenance_margin > 0)
        levels.append(level)
        if level == LIQUIDATION:
            past.append(symbols.get(row.id, row.id))
    return Verdict(
        level=max(levels, key=LEVEL.__getitem__),
        pool_level=pool_level,
        isolated_past_liquidation=tuple(past),
    )

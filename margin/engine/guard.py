"""The price guard over source quotes: each symbol's quotes through the engine's index rules
(`margin.engine.prices.index_price`: age limit, move limit, capping to the median, quorum),
with every quote the rules did not count as printed handed back for the desk's log.

The vol guard applies the same age and move rules to an option series' implied vol. The vol
surface is one source, so there is no quorum to confirm a move as the market's: a vol further
than `max_move` from the series' last one counts at last × (1 ± max_move), as a source counts
at the median × (1 ± cap), and a surface move larger than that (a regime switch lifts the short
end 2.5×) is walked in over several ticks instead of reaching every option's mark at once. A
surface with no fresh input within the age limit gives no vol: the option's mark holds, with
why, as a mark holds on an uncertain index.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from margin.engine.precision import exact
from margin.engine.prices import (
    CAPPED,
    STALE,
    IndexResult,
    IndexRules,
    SourcePrice,
    SourceVerdict,
    index_price,
    percent_text,
)
from margin.engine.quotes import Quote


@dataclass(frozen=True)
class GuardedPrice:
    result: IndexResult
    verdicts: tuple[tuple[Quote, SourceVerdict], ...]  # each with the quote it judged

    @property
    def price(self) -> Decimal | None:
        return self.result.price

    @property
    def uncertain(self) -> str:
        return self.result.uncertain


def guarded_price(
    quotes: Sequence[Quote], *, last_price: Decimal | None, now: datetime, rules: IndexRules
) -> GuardedPrice:
    """The index of one symbol's quotes (one per source), and the verdicts on its quotes."""
    by_source = {q.source: q for q in quotes}
    result = index_price(
        [SourcePrice(q.source, q.price, (now - q.at).total_seconds()) for q in quotes],
        last_index=last_price,
        rules=rules,
    )
    return GuardedPrice(result, tuple((by_source[v.source], v) for v in result.verdicts))


@dataclass(frozen=True)
class VolRules:
    max_age_s: float  # a surface whose inputs are older gives no vol
    max_move: Decimal  # the largest relative move of a series' vol in one tick


@dataclass(frozen=True)
class GuardedVol:
    """The vol a series is marked at (None: none fit, the mark holds), and why it is not the
    surface's own (STALE or CAPPED, "" when it is) in words for the desk and the trader."""

    vol: Decimal | None
    reason: str = ""
    detail: str = ""


@exact
def guarded_vol(
    surface_vol: Decimal,
    *,
    surface_age_s: float,
    last_vol: Decimal | None,
    rules: VolRules,
) -> GuardedVol:
    """A series' vol by the rules above: the surface's, capped to its last vol × (1 ± max_move);
    none when the surface is older than the age limit."""
    if surface_age_s > rules.max_age_s:
        return GuardedVol(
            None,
            STALE,
            f"vol surface stale: no fresh vol for {surface_age_s:.0f} s "
            f"(limit {rules.max_age_s:g} s)",
        )
    if last_vol is None:
        return GuardedVol(surface_vol)
    low, high = last_vol * (1 - rules.max_move), last_vol * (1 + rules.max_move)
    counted = min(max(surface_vol, low), high)
    if counted == surface_vol:
        return GuardedVol(surface_vol)
    return GuardedVol(
        counted,
        CAPPED,
        f"surface vol {percent_text(surface_vol)} against {percent_text(last_vol)} a tick before, "
        f"beyond ±{percent_text(rules.max_move)}: counted at {percent_text(counted)}",
    )

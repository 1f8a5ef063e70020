"""The price guard over source quotes: each symbol's quotes through the engine's index rules
(`margin.engine.prices.index_price`: age limit, move limit, capping to the median, quorum),
with every quote the rules did not count as printed handed back for the desk's log."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from margin.engine.prices import IndexResult, IndexRules, SourcePrice, SourceVerdict, index_price
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

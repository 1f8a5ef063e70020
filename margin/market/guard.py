"""The index price guard: which source quotes may make an index, and the index they make.

A quote older than `max_age_s` is left out (a frozen feed must not hold the price). A quote
further than `max_move` from the last accepted index is left out too (a fat finger or a thin
venue printing far from the others, the 2025-10-10 USDe/wBETH kind) unless a majority of the
fresh sources, at least two, moved that far together: that is the market moving, not one bad
print. The index is the median of what is left (Binance, OKX and Bybit index rules: a median or
a weighted average over several venues with outlier exclusion).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median

from margin.market.quotes import Quote

STALE = "stale"
MOVE = "move"


@dataclass(frozen=True)
class GuardedPrice:
    price: Decimal | None  # None: no quote passed, the last index stays (and ages)
    accepted: tuple[Quote, ...]
    rejected: tuple[tuple[Quote, str], ...]


def _moved(quote: Quote, reference: Decimal, max_move: Decimal) -> bool:
    return abs(quote.price / reference - 1) > max_move


def guarded_price(
    quotes: Sequence[Quote],
    *,
    last_price: Decimal | None,
    now: datetime,
    max_move: Decimal,
    max_age_s: float,
) -> GuardedPrice:
    """The median of the fresh, plausible quotes of one symbol, and the quotes left out."""
    fresh = [q for q in quotes if (now - q.at).total_seconds() <= max_age_s]
    rejected: list[tuple[Quote, str]] = [(q, STALE) for q in quotes if q not in fresh]
    if last_price is None:
        accepted = fresh
    else:
        outliers = [q for q in fresh if _moved(q, last_price, max_move)]
        confirmed_move = len(outliers) >= 2 and 2 * len(outliers) > len(fresh)
        if confirmed_move:
            accepted = fresh
        else:
            accepted = [q for q in fresh if q not in outliers]
            rejected += [(q, MOVE) for q in outliers]
    price = median(q.price for q in accepted) if accepted else None
    return GuardedPrice(price=price, accepted=tuple(accepted), rejected=tuple(rejected))

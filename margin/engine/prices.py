"""Index and mark price rules: which source prices make an index, when an index is not to be
trusted, and the mark made from it. Plain Decimal: a market tick prices tens of symbols, and
the price every margin figure rests on must be exact and explainable.

The index (Binance USDⓈ-M "Price Index", https://www.binance.com/en/support/faq/360033525071):
- a source that has not updated within the age limit weighs zero (Binance: 10 s);
- a source further than `max_move` from the last index is left out unless most fresh sources,
  at least two, moved that far together (the market moving, not one bad print);
- each remaining source is capped to the median × (1 ± `source_cap`) (Binance: 5%), and the
  index is their equally weighted average: one source of n moves it by at most cap ÷ n;
- a quorum: at least `min_sources` fresh sources within `agreement_band` of their median. Short
  of it (one venue left, or venues that disagree) the last index holds and is *uncertain*:
  nothing is liquidated on it (Binance's "Last Price Protected" holds the price the same way).

The mark (Binance "Mark Price in Perpetual Futures", https://www.binance.com/en/support/faq/
fff6ec1b3f5845d19f1fb924644a0877): the median of
Price 1 = index × (1 + last funding rate × time until funding ÷ funding interval),
Price 2 = index + moving average of the basis, and the last traded price.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from margin.engine.precision import exact

# Why a source's price did not count as printed.
STALE = "stale"  # silent past the age limit: weight zero
MOVE = "move"  # too far from the last index, and not confirmed by most sources: weight zero
CAPPED = "capped"  # counted at the median × (1 ± cap) instead of its own price
NO_QUORUM = "quorum"  # its symbol had no quorum: the last index held

BASIS_EMA_TIME_CONSTANT_S = 60.0
FUNDING_INTERVAL_S = 8 * 3600  # Binance USDⓈ-M perpetuals: 00:00, 08:00, 16:00 UTC


@dataclass(frozen=True)
class SourcePrice:
    source: str
    price: Decimal
    age_s: float


@dataclass(frozen=True)
class IndexRules:
    max_age_s: float
    max_move: Decimal
    source_cap: Decimal
    agreement_band: Decimal
    min_sources: int


@dataclass(frozen=True)
class SourceVerdict:
    """A source price the rules did not count as printed: left out, capped, or part of a
    symbol without quorum. `reference` is what it was measured against (the last index for a
    stale or moved print, the median for a capped one or a lost quorum); `counted_at` the
    price it counted at (None: weight zero)."""

    source: str
    price: Decimal
    reason: str
    reference: Decimal | None
    counted_at: Decimal | None = None


@dataclass(frozen=True)
class IndexResult:
    price: Decimal | None  # the index now: a new one, or the last one held (None: never had one)
    uncertain: str  # why the last index holds ("" when the price is new and fit)
    counted: tuple[tuple[str, Decimal], ...]  # (source, price it counted at) of a new index
    verdicts: tuple[SourceVerdict, ...]

    @property
    def held(self) -> bool:
        return bool(self.uncertain)


def percent_text(ratio: Decimal) -> str:
    return f"{(ratio * 100).normalize():f}%"


def capped_to_median(price: Decimal, median_price: Decimal, cap: Decimal) -> Decimal:
    """Binance single-source deviation: a source further than `cap` from the median of all
    sources counts at median × (1 ± cap)."""
    return min(max(price, median_price * (1 - cap)), median_price * (1 + cap))


def _moved(price: Decimal, reference: Decimal, max_move: Decimal) -> bool:
    return abs(price / reference - 1) > max_move


def _plausible(
    fresh: list[SourcePrice], last_index: Decimal | None, max_move: Decimal
) -> tuple[list[SourcePrice], list[SourceVerdict]]:
    """The fresh sources within `max_move` of the last index, unless most of them (at least
    two) moved that far together: then all of them (the market moved)."""
    if last_index is None:
        return fresh, []
    outliers = [s for s in fresh if _moved(s.price, last_index, max_move)]
    if len(outliers) >= 2 and 2 * len(outliers) > len(fresh):
        return fresh, []
    kept = [s for s in fresh if s not in outliers]
    return kept, [SourceVerdict(s.source, s.price, MOVE, last_index) for s in outliers]


def _quorum_shortfall(prices: list[Decimal], middle: Decimal, rules: IndexRules) -> str:
    """Why these prices make no index ("" when they do): fewer than `min_sources` of them lie
    within `agreement_band` of their median."""
    agreeing = sum(1 for p in prices if abs(p / middle - 1) <= rules.agreement_band)
    if agreeing >= rules.min_sources:
        return ""
    if len(prices) < rules.min_sources:
        return f"{len(prices)} fresh source(s), {rules.min_sources} needed"
    return (
        f"sources disagree: {agreeing} of {len(prices)} within "
        f"{percent_text(rules.agreement_band)} of their median, {rules.min_sources} needed"
    )


@exact
def index_price(
    sources: Sequence[SourcePrice], *, last_index: Decimal | None, rules: IndexRules
) -> IndexResult:
    """The index of one symbol from its sources' latest prices, by the rules above."""
    fresh = [s for s in sources if s.age_s <= rules.max_age_s]
    verdicts = [
        SourceVerdict(s.source, s.price, STALE, last_index) for s in sources if s not in fresh
    ]
    kept, moved = _plausible(fresh, last_index, rules.max_move)
    verdicts += moved
    if not kept:
        if len(fresh) < rules.min_sources:
            why = f"{len(fresh)} fresh source(s), {rules.min_sources} needed"
        else:
            why = "every fresh source moved too far alone"
        return IndexResult(last_index, why, (), tuple(verdicts))
    middle = median(s.price for s in kept)
    shortfall = _quorum_shortfall([s.price for s in kept], middle, rules)
    if shortfall:
        verdicts += [SourceVerdict(s.source, s.price, NO_QUORUM, middle) for s in kept]
        return IndexResult(last_index, shortfall, (), tuple(verdicts))
    counted = tuple((s.source, capped_to_median(s.price, middle, rules.source_cap)) for s in kept)
    verdicts += [
        SourceVerdict(s.source, s.price, CAPPED, middle, at)
        for s, (_, at) in zip(kept, counted, strict=True)
        if at != s.price
    ]
    index = sum(at for _, at in counted) / len(counted)
    return IndexResult(index, "", counted, tuple(verdicts))


def basis_weight(elapsed_s: float) -> Decimal:
    """The weight of a new basis sample after `elapsed_s` seconds: 1 − e^(−t/τ), so the moving
    average of the basis (Binance Price 2) ages in time, not in samples, and an irregular tick
    rate does not change its memory."""
    elapsed_s = max(elapsed_s, 0.0)
    return Decimal(str(round(1 - math.exp(-elapsed_s / BASIS_EMA_TIME_CONSTANT_S), 12)))


@exact
def smoothed_basis(
    *, previous_basis: Decimal, traded_price: Decimal | None, index: Decimal, elapsed_s: float
) -> Decimal:
    """EMA of (traded price − index); without a traded price the basis is kept."""
    if traded_price is None:
        return previous_basis
    weight = basis_weight(elapsed_s)
    return previous_basis + weight * ((traded_price - index) - previous_basis)


def seconds_to_funding(now_epoch_s: float, interval_s: float = FUNDING_INTERVAL_S) -> Decimal:
    """Seconds until the next funding time; funding times are the multiples of the interval
    since the Unix epoch (00:00, 08:00 and 16:00 UTC for 8 h)."""
    return Decimal(str(interval_s - now_epoch_s % interval_s))


@exact
def funding_basis_price(
    index: Decimal,
    *,
    funding_rate: Decimal,
    seconds_until_funding: Decimal,
    interval_s: float = FUNDING_INTERVAL_S,
) -> Decimal:
    """Binance Price 1: index × (1 + last funding rate × time until funding ÷ interval)."""
    return index * (1 + funding_rate * seconds_until_funding / Decimal(str(interval_s)))


# Which of the three prices a mark is (the median's middle term).
BASIS, FUNDING, LAST = "basis", "funding", "last"


@dataclass(frozen=True)
class MarkResult:
    price: Decimal
    binding: str  # BASIS, FUNDING or LAST: the term that is the median
    basis_price: Decimal
    funding_price: Decimal
    last_price: Decimal | None


@exact
def mark_price(
    *,
    index: Decimal,
    basis: Decimal,
    funding_rate: Decimal,
    seconds_until_funding: Decimal,
    last_price: Decimal | None,
    interval_s: float = FUNDING_INTERVAL_S,
) -> MarkResult:
    """Binance perpetual mark: median(Price 1, Price 2, last price). With no last traded price
    the mark is Price 2 (index + smoothed basis), the mark of one print's least influence."""
    basis_price = index + basis
    funding_price = funding_basis_price(
        index,
        funding_rate=funding_rate,
        seconds_until_funding=seconds_until_funding,
        interval_s=interval_s,
    )
    if last_price is None:
        return MarkResult(basis_price, BASIS, basis_price, funding_price, None)
    terms = sorted(
        [(basis_price, BASIS), (funding_price, FUNDING), (last_price, LAST)],
        key=lambda term: term[0],
    )
    price, binding = terms[1]
    return MarkResult(price, binding, basis_price, funding_price, last_price)

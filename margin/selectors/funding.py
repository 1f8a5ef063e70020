"""Reads of perpetual funding: the funding grid, the premium samples, the rate a funding time
settles at or is predicted to, and what a position has paid so far.

`funding_outlooks` is the one read pages, the API, /disclosure/ and the mark price use: per
perpetual, the next funding time, the last settled rate and the predicted one.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Subquery

from margin.db import decimal, rows, table
from margin.engine.funding import (
    RateWorking,
    interval_rate_working,
    last_funding_time,
    premium_index,
)
from margin.market.clock import real_duration
from margin.models import FundingPayment, FundingRate, Instrument, MarkPriceHistory


def funding_interval(instrument: Instrument) -> timedelta:
    """The real time between two funding times of `instrument` (its interval is market time)."""
    return real_duration(timedelta(hours=instrument.funding_interval_hours))


def funding_time_due(instrument: Instrument, *, now: datetime) -> datetime:
    """The latest funding time at or before `now`."""
    return last_funding_time(
        now, interval_s=funding_interval(instrument).total_seconds(), anchor=settings.FUNDING_ANCHOR
    )


def premium_samples(instrument: Instrument, *, since: datetime, until: datetime) -> list[Decimal]:
    """Premium index samples of (since, until], oldest first: each mark against its index."""
    return [
        premium_index(mark_price=mark, index_price=index)
        for mark, index in MarkPriceHistory.objects.filter(
            instrument=instrument, at__gt=since, at__lte=until
        )
        .order_by("at", "pk")
        .values_list("mark_price", "index_price")
    ]


def rate_working(instrument: Instrument, samples: list[Decimal]) -> RateWorking:
    """The rate of a funding interval of `instrument` from its premium samples, oldest first."""
    return interval_rate_working(
        samples,
        interval_s=instrument.funding_interval_hours * 3600,
        interest_per_8h=instrument.funding_interest_per_8h,
        cap=instrument.funding_rate_cap,
    )


def funding_rate_working(instrument: Instrument, *, since: datetime, until: datetime):
    """The rate of the funding interval (since, until]."""
    return rate_working(instrument, premium_samples(instrument, since=since, until=until))


@dataclass(frozen=True)
class FundingOutlook:
    """One perpetual's funding as a trader sees it now."""

    instrument: str
    interval_hours: int
    interval: timedelta  # real time
    next_funding_time: datetime
    last_funding_time: datetime | None
    last_rate: Decimal | None
    predicted: RateWorking

    @property
    def predicted_rate(self) -> Decimal:
        return self.predicted.rate

    def seconds_to_next(self, now: datetime) -> float:
        return max(0.0, (self.next_funding_time - now).total_seconds())


def funding_outlooks(*, now: datetime, symbols: Iterable[str] | None = None):
    """Symbol → FundingOutlook of every active perpetual (or of `symbols` among them). The
    predicted rate is the current interval's rate so far: it moves with every mark. Three
    queries whatever the number of perpetuals."""
    latest = FundingRate.objects.filter(instrument=OuterRef("pk")).order_by("-funding_time")
    instruments = Instrument.objects.filter(
        kind=Instrument.Kind.PERPETUAL, is_active=True
    ).annotate(
        last_rate=Subquery(latest.values("rate")[:1]),
        last_time=Subquery(latest.values("funding_time")[:1]),
    )
    if symbols is not None:
        instruments = instruments.filter(symbol__in=list(symbols))
    instruments = list(instruments.order_by("symbol"))
    if not instruments:
        return {}
    due = {i.pk: funding_time_due(i, now=now) for i in instruments}
    samples: dict[int, list[Decimal]] = defaultdict(list)
    for instrument_id, at, mark, index in (
        MarkPriceHistory.objects.filter(
            instrument__in=instruments, at__gt=min(due.values()), at__lte=now
        )
        .order_by("at", "pk")
        .values_list("instrument_id", "at", "mark_price", "index_price")
    ):
        if at > due[instrument_id]:
            samples[instrument_id].append(premium_index(mark_price=mark, index_price=index))
    return {
        instrument.symbol: FundingOutlook(
            instrument=instrument.symbol,
            interval_hours=instrument.funding_interval_hours,
            interval=funding_interval(instrument),
            next_funding_time=due[instrument.pk] + funding_interval(instrument),
            last_funding_time=instrument.last_time,
            last_rate=instrument.last_rate,
            predicted=rate_working(instrument, samples[instrument.pk]),
        )
        for instrument in instruments
    }


def funding_rate_for_mark(*, instrument_id: int, now: datetime) -> tuple[Decimal, float]:
    """For the mark price's funding basis, index × (1 + rate × time to next / interval): the
    last settled rate of the perpetual (0 before its first funding) and the fraction of the
    interval left until the next funding time."""
    instrument = Instrument.objects.get(pk=instrument_id)
    last = FundingRate.objects.filter(instrument=instrument).order_by("-funding_time").first()
    interval = funding_interval(instrument)
    upcoming = funding_time_due(instrument, now=now) + interval
    left = (upcoming - now) / interval
    return (last.rate if last else Decimal(0)), left


def funding_rates_open() -> list[int]:
    """The ids of the funding rates claimed and not yet settled for every account, oldest
    first."""
    return list(
        FundingRate.objects.filter(completed_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def cumulative_funding(position_ids: Iterable[int]) -> dict[int, Decimal]:
    """Position id → what it has received (+) or paid (−) in funding, all times together. Plain
    SQL: the dashboard polls it, and compiling the queryset cost more CPU than the query."""
    ids = list(position_ids)
    if not ids:
        return defaultdict(Decimal)
    totals = rows(
        f"SELECT position_id, sum(amount) FROM {table(FundingPayment)} "
        f"WHERE position_id IN ({', '.join(['%s'] * len(ids))}) GROUP BY position_id",
        ids,
    )
    return defaultdict(Decimal, {pk: decimal(total) for pk, total in totals})


def funding_series(position_id: int, *, limit: int = 200) -> list[tuple[datetime, Decimal]]:
    """(funding time, cumulative funding) of a position, oldest first, for its chart."""
    payments = list(
        FundingPayment.objects.filter(position_id=position_id)
        .order_by("-funding_rate__funding_time")
        .values_list("funding_rate__funding_time", "amount")[:limit]
    )
    running = Decimal(0)
    series = []
    for at, amount in reversed(payments):
        running += amount
        series.append((at, running))
    return series


def dated_futures():
    """Every dated future, live first by expiry, then the settled ones with their published
    settlement prices, newest first."""
    return Instrument.objects.filter(kind=Instrument.Kind.FUTURE).order_by("-is_active", "expiry")


def last_funding_rates() -> dict[str, Decimal]:
    """Perpetual symbol → its last settled funding rate (the mark price's funding basis)."""
    latest = FundingRate.objects.filter(instrument=OuterRef("pk")).order_by("-funding_time")
    return {
        symbol: rate
        for symbol, rate in Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL)
        .annotate(rate=Subquery(latest.values("rate")[:1]))
        .values_list("symbol", "rate")
        if rate is not None
    }

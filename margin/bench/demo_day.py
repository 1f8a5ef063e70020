"""A day (or any span) of the demo market on a simulated clock: what `make run` does over that
much market time, in minutes. Every `step_s` seconds of the clock: a market tick (the demo
market's quotes, index and marks), then a revaluation tick, which settles the funding times and
expiries that passed; the accounts it finds due are liquidated as the worker would. At the end,
the ledger check of the whole book.

The clock starts at the wall clock and runs ahead of it, so every position opened before the
run is open at each funding time of the run.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from margin.market.clock import real_duration
from margin.models import FundingPayment, FundingRate, Instrument, Notification
from margin.selectors.ledger import LedgerDifferences, ledger_differences
from margin.services.liquidation import liquidation_run
from margin.services.prices import market_tick_run
from margin.services.revaluation import revaluation_tick_run, snapshots_prune


@dataclass(frozen=True)
class DemoDay:
    ticks: int
    market_hours: float
    started: datetime
    ended: datetime
    funding_times: int
    funding_payments: int
    futures_settled: list[str]
    futures_listed: list[str]
    expiry_notices: int
    liquidations: int
    seconds: float
    ledger: LedgerDifferences


def demo_day_run(*, start: datetime, market_hours: float = 24.0, step_s: float = 10.0) -> DemoDay:
    started = time.perf_counter()
    funding_before = set(FundingRate.objects.values_list("pk", flat=True))
    payments_before = FundingPayment.objects.count()
    futures_before = set(Instrument.objects.values_list("symbol", flat=True))
    settled_before = set(
        Instrument.objects.filter(settled_at__isnull=False).values_list("symbol", flat=True)
    )
    notices_before = Notification.objects.filter(kind=Notification.Kind.EXPIRY).count()
    end = start + real_duration(timedelta(hours=market_hours))
    now, ticks, liquidations = start, 0, 0
    while now < end:
        now += timedelta(seconds=step_s)
        market_tick_run(now=now)
        run = revaluation_tick_run(now=now)
        for shard in run.shards:
            for account_id, tick_id in shard.to_liquidate:
                liquidation_run(account_id=account_id, tick_id=tick_id, now=now)
                liquidations += 1
        ticks += 1
        if ticks % 50 == 0:
            snapshots_prune()
    return DemoDay(
        ticks=ticks,
        market_hours=market_hours,
        started=start,
        ended=now,
        funding_times=FundingRate.objects.exclude(pk__in=funding_before).count(),
        funding_payments=FundingPayment.objects.count() - payments_before,
        futures_settled=sorted(
            set(
                Instrument.objects.filter(settled_at__isnull=False).values_list("symbol", flat=True)
            )
            - settled_before
        ),
        futures_listed=sorted(
            set(Instrument.objects.values_list("symbol", flat=True)) - futures_before
        ),
        expiry_notices=Notification.objects.filter(kind=Notification.Kind.EXPIRY).count()
        - notices_before,
        liquidations=liquidations,
        seconds=time.perf_counter() - started,
        ledger=ledger_differences(),
    )

"""Time the market tick (the demo market's quotes, then the guarded index and mark of every
symbol), as beat runs it every second: p50/p95 per tick over N ticks, with the data size."""

import statistics
import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from margin.models import Asset, Instrument, SourceQuote
from margin.services.prices import market_tick_run
from margin.services.reference import reference_data_ensure


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = "p50/p95 milliseconds of one market tick (demo quotes + price refresh)."

    def add_arguments(self, parser):
        parser.add_argument("--ticks", type=int, default=200)

    def handle(self, *args, ticks: int, **options):
        reference_data_ensure()
        start = timezone.now()
        timings = []
        for second in range(ticks):
            began = time.perf_counter()
            market_tick_run(now=start + timedelta(seconds=second))
            timings.append((time.perf_counter() - began) * 1000)
        assets = Asset.objects.count()
        instruments = Instrument.objects.filter(is_active=True).count()
        self.stdout.write(
            f"ticks={ticks} assets={assets} instruments={instruments} "
            f"quotes_per_tick={SourceQuote.objects.count()} "
            f"tick_ms_p50={statistics.median(timings):.1f} "
            f"tick_ms_p95={percentile(timings, 0.95):.1f}"
        )

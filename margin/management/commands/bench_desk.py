"""Time the desk's simulations over the whole book: each stress scenario of the library, a
cascade of N rounds, and the queue's first page."""

import time
from datetime import timedelta

import numpy as np
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.paginator import Paginator
from django.utils import timezone

from margin.engine.cascade import simulate_cascade
from margin.engine.events import stress_events
from margin.errors import ApplicationError
from margin.filters import QueueFilter
from margin.models import AssetPriceHistory, CreditTier, MarginAccount
from margin.selectors.book import desk_book
from margin.selectors.desk import (
    insurance_fund_value,
    latest_complete_tick,
    queue_snapshots,
    risk_asset_symbols,
)
from margin.services.prices import market_tick_run
from margin.services.revaluation import revaluation_tick_run
from margin.services.stress_runs import scenario_build, stress_measure
from margin.views.desk import QUEUE_PAGE_SIZE

HISTORY_MINUTES = 30
SCENARIOS = (
    ("uniform", {"move": -0.2}),
    ("depeg", {"asset": "USDC", "move": -0.1}),
    ("ewma", {"k_sigma": 3}),
    ("correlated", {"k_sigma": 3}),
    ("replay", {"minutes": 60}),
    *(("event", {"event": name}) for name in stress_events()),
)


class Command(BaseCommand):
    help = "Time the stress scenarios and a liquidation cascade over a book of N accounts."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--rounds", type=int, default=10)
        parser.add_argument(
            "--depth",
            type=float,
            default=50_000_000.0,
            help="USD of net selling per 1 %% move in the cascade (thin: it keeps going)",
        )
        parser.add_argument("--shock", type=float, default=-0.02, help="cascade's first move")

    def _timed(self, label: str, work):
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        self.stdout.write(f"{label:<52} {seconds:8.3f} s")
        return result, seconds

    def handle(self, *args, accounts: int, rounds: int, depth: float, shock: float, **options):
        if MarginAccount.objects.count() < accounts:
            call_command("seed_book", accounts=accounts, stdout=self.stdout)
        if not AssetPriceHistory.objects.exists():
            # A recorded stretch for the volatility scenarios and the replay: the demo market,
            # one print a minute for the last half hour.
            start = timezone.now() - timedelta(minutes=HISTORY_MINUTES)
            for minute in range(HISTORY_MINUTES):
                market_tick_run(now=start + timedelta(minutes=minute))
        if latest_complete_tick() is None:
            self._timed(
                "a revaluation tick (for the queue)",
                lambda: revaluation_tick_run(now=timezone.now()),
            )
        self._timed("load the book, cold (engine_book)", desk_book)
        book_slice, load_s = self._timed("the book again, unchanged (cache + prices)", desk_book)
        book = book_slice.book
        self.stdout.write(
            f"book: {book.n_accounts} accounts, {book.n_positions} positions, "
            f"{len(book.col_account)} collateral lines, {len(book.asset_names)} assets"
        )
        fund = float(insurance_fund_value())
        for kind, scenario_options in SCENARIOS:
            try:
                scenario = scenario_build(
                    book_slice=book_slice, kind=kind, options=scenario_options
                )
            except ApplicationError as error:
                self.stdout.write(f"stress {kind:<37} skipped: {error.message}")
                continue
            steps = len(scenario.moves)
            name = scenario_options.get("event", kind)
            (worst, _), seconds = self._timed(
                f"stress {name} ({steps} step{'s' * (steps > 1)})",
                lambda s=scenario: stress_measure(
                    book_slice=book_slice, scenario=s, insurance_fund=fund
                ),
            )
            self.stdout.write(
                f"    {worst.accounts_under_maintenance} under maintenance, shortfall "
                f"{worst.maintenance_shortfall:,.0f}; with the load {load_s + seconds:.3f} s"
            )
        moving = risk_asset_symbols()
        moves = np.array([shock if name in moving else 0.0 for name in book.asset_names])
        depths = np.array([depth if name in moving else 0.0 for name in book.asset_names])
        result, seconds = self._timed(
            f"cascade, up to {rounds} rounds",
            lambda: simulate_cascade(
                book,
                book_slice.marks,
                book_slice.asset_prices,
                moves,
                depth=depths,
                max_rounds=rounds,
                insurance_fund=fund,
            ),
        )
        self.stdout.write(
            f"    {len(result.rounds)} rounds, {result.accounts_liquidated} accounts liquidated "
            f"(per round {[r.accounts_liquidated for r in result.rounds]}); "
            f"with the load {load_s + seconds:.3f} s"
        )
        tick = latest_complete_tick()
        if tick is None:
            self.stdout.write("queue: no revaluation tick yet, not timed")
            return
        snapshots = queue_snapshots(tick)
        tier = CreditTier.objects.order_by("rank", "code").first()
        for label, query in (
            ("ratio", {}),
            ("distance", {"order": "buffer"}),
            ("margin call", {"state": ["margin_call"]}),
            ("notional ≥ 100k", {"min_notional": "100000"}),
            ("stress cover", {"order": "stress"}),
            ("size", {"order": "size"}),
            ("warning by stress cover", {"state": ["warning"], "order": "stress"}),
            ("healthy by distance", {"state": ["healthy"], "order": "buffer"}),
            ("ratio ≥ 80 %", {"min_ratio": "80"}),
            ("notional ≤ 1k", {"max_notional": "1000"}),
            (f"tier {tier.code if tier else '-'}", {"credit_tier": tier.pk if tier else ""}),
            ("reduce-only", {"reduce_only": "true"}),
            ("stale-blocked", {"stale_blocked": "true"}),
            ("exposed to BTC", {"asset": "BTC"}),
        ):
            # As the desk's page reads it: one paginator counts the filtered queue and pages it.
            self._timed(
                f"queue first page + count ({label})",
                lambda q=query: list(
                    Paginator(QueueFilter(q, queryset=snapshots).qs, QUEUE_PAGE_SIZE).get_page(1)
                ),
            )

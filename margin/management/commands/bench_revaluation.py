"""Benchmark of one revaluation tick over the whole book against the naive way.

The tick runs the shard code the Celery shard tasks run (`revaluation_shard_run`), in worker
processes this command starts and stops itself. `--expire-series N` brings the N dated series
(options and futures) that expire first and are not settled yet to expire a second before the
tick, so the tick settles them (as a book run some time after its seeding finds its short-dated
series expired). The naive way loads each account with the ORM
and quotes it with the Decimal reference engine, then writes its snapshot with the ORM
(rolled back), on a random sample of accounts. funding/load/compute/write are summed over the
shards (work done by all workers; funding, expiry: each shard settling its accounts' funding
and expired positions); tick_s
is the wall time of the whole tick.
"""

import multiprocessing
import random
import resource
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Least
from django.utils import timezone

from margin.db import connections_close_before_fork
from margin.errors import ApplicationError
from margin.models import (
    Asset,
    AssetPriceHistory,
    Fill,
    FundingPayment,
    Instrument,
    MarginAccount,
    MarginSnapshot,
    Position,
    RevaluationTick,
)
from margin.selectors.accounts import account_state_load
from margin.selectors.parameters import parameters_in_force
from margin.selectors.volatility import MAX_RETURNS, return_period_s
from margin.services.collateral import collateral_deposit
from margin.services.funding import funding_settle_due
from margin.services.positions import position_market_fill
from margin.services.prices import market_tick_run
from margin.services.reference import book_reference_ensure
from margin.services.revaluation import (
    revaluation_shard_run,
    revaluation_tick_start,
)


def _shard(shard_id: int):
    return revaluation_shard_run(shard_id=shard_id)


class Command(BaseCommand):
    help = "Time one full revaluation tick and the naive per-account way; last line: figures."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--positions", type=int, default=500_000)
        parser.add_argument("--sample", type=int, default=200, help="accounts timed the naive way")
        parser.add_argument("--workers", type=int, default=2, help="shard worker processes")
        parser.add_argument(
            "--ticks",
            type=int,
            default=1,
            help="ticks run one after the other, the last timed: the first after an empty history "
            "writes every account's snapshot, the next ones the accounts at risk and a refresh "
            "class (SNAPSHOT_REFRESH_TICKS)",
        )
        parser.add_argument(
            "--changes",
            type=int,
            default=200,
            help="before each tick after the first, this many random accounts each deposit "
            "USDT or sell a tenth of a position through the services: the accounts the next "
            "tick reads again beside those whose state it moved",
        )
        parser.add_argument(
            "--funding",
            action="store_true",
            help="put a funding time one second before the tick: it settles every perpetual",
        )
        parser.add_argument(
            "--option-share",
            type=float,
            default=0.0,
            help="share of the seeded positions that are options (seed_book --option-share)",
        )
        parser.add_argument(
            "--expire-series",
            type=int,
            default=0,
            help="the N dated series expiring first and not settled yet expire a second before "
            "the tick: it settles them",
        )

    def handle(
        self,
        *args,
        accounts: int,
        positions: int,
        sample: int,
        workers: int,
        ticks: int,
        changes: int,
        funding: bool,
        option_share: float,
        expire_series: int,
        **_,
    ):
        # The price history first, then the book at the prices it ends on: the history is a
        # random walk of days of market time, and a book seeded before it would be revalued
        # after a move no live book would still be standing in (most isolated positions past
        # their line), so the tick would time a mass liquidation instead of a revaluation.
        book_reference_ensure()
        self._price_history()
        if MarginAccount.objects.count() < accounts:
            call_command(
                "seed_book",
                accounts=accounts,
                positions=positions,
                option_share=option_share,
                stdout=self.stdout,
            )
        n_accounts = MarginAccount.objects.count()
        n_positions = Position.objects.exclude(quantity=0).count()
        n_options = (
            Position.objects.exclude(quantity=0)
            .filter(instrument__kind=Instrument.Kind.OPTION)
            .count()
        )
        if not funding:
            # Funding owed so far is settled outside the timing, and the funding times that pass
            # during the run are left owed: the line times the revaluation alone (`--funding`
            # times a funding time inside it). The demo's funding times come every few minutes;
            # settling one between ticks took 61-74 s at 1M, so the next tick started long after
            # the last and wrote every account's snapshot (`_refresh_class`).
            funding_settle_due(now=timezone.now())
            settings.FUNDING_SETTLEMENT_ENABLED = False
        # One pool for every tick, its processes living on as Celery's prefork workers do:
        # a shard's rows are left for whichever process takes it next (`book_rows`).
        connections_close_before_fork()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for n in range(ticks):
                last = n == ticks - 1
                if n:
                    self._book_changes(changes, seed=n)
                start, shards, tick_s, dispatch_s, expired_series, expired_positions = self._tick(
                    pool, funding=funding and last, expire_series=expire_series if last else 0
                )
        # The pool has joined its workers: the largest resident set any of them reached (kB).
        worker_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        naive_s = self._naive(start.tick, sample)
        funding_s, expiry_s, load_s, compute_s, write_s = (
            sum(getattr(s, name) for s in shards)
            for name in ("funding_s", "expiry_s", "load_s", "compute_s", "write_s")
        )
        self.stdout.write(
            f"accounts={n_accounts} positions={n_positions} options={n_options} funding={funding} "
            f"expired_series={expired_series} expired_positions={expired_positions} "
            f"tick_s={tick_s:.2f} dispatch_s={dispatch_s:.2f} funding_s={funding_s:.2f} "
            f"expiry_s={expiry_s:.2f} "
            f"load_s={load_s:.2f} compute_s={compute_s:.2f} write_s={write_s:.2f} "
            f"worker_peak_rss_mb={worker_rss_mb:.0f} workers={workers} "
            f"naive_s_per_account={naive_s:.4f} speedup={naive_s * n_accounts / tick_s:.0f}"
        )

    def _tick(self, pool: ProcessPoolExecutor, *, funding: bool, expire_series: int) -> tuple:
        """One tick on fresh prices (one bounded demo step after a pause), its line printed:
        (its start, its shards' results, tick_s, dispatch_s, expired series and positions)."""
        market_tick_run(now=timezone.now())
        now = timezone.now()
        if funding:
            settings.FUNDING_ANCHOR = now - timedelta(seconds=1)
        funded_before = FundingPayment.objects.count()
        if expire_series:
            self._expire(expire_series, at=now - timedelta(seconds=1))
        settled_before = Fill.objects.filter(reason=Fill.Reason.SETTLEMENT).count()
        started = time.perf_counter()
        start = revaluation_tick_start(now=now)
        dispatch_s = time.perf_counter() - started
        if start.tick is None:
            raise SystemExit(f"no tick: {start.skipped}")
        connections_close_before_fork()
        shards = list(pool.map(_shard, start.shard_ids))
        tick_s = time.perf_counter() - started
        start.tick.refresh_from_db()
        self.stdout.write(
            f"tick {start.tick.pk}: {start.tick.status}, {len(shards)} shards, "
            f"stress on {len(start.tick.volatility.get('assets', []))} assets' volatility, "
            f"{sum(s.accounts for s in shards)} accounts, "
            f"{sum(len(s.to_liquidate) for s in shards)} to liquidate, "
            f"{sum(s.transitions for s in shards)} state changes, "
            f"{sum(s.snapshots for s in shards)} snapshots (refresh class "
            f"{start.tick.refresh_class}), "
            f"{FundingPayment.objects.count() - funded_before} funding payments, "
            f"book copies hit on {sum(s.book_cached for s in shards)} shards, missed on "
            f"{sum(not s.book_cached for s in shards)}, "
            f"{sum(s.book_accounts_read for s in shards)} accounts read, "
            f"tick_s {tick_s:.2f} load_s {sum(s.load_s for s in shards):.2f}"
        )
        expired_series = Instrument.objects.filter(settled_at=now).count()
        expired_positions = (
            Fill.objects.filter(reason=Fill.Reason.SETTLEMENT).count() - settled_before
        )
        return start, shards, tick_s, dispatch_s, expired_series, expired_positions

    def _book_changes(self, count: int, *, seed: int) -> None:
        """`count` random accounts each write through a service: every other one deposits 100
        USDT, the rest sell (or buy back) a tenth of their first open position at the market.
        A refused order (its margin) writes nothing and is counted."""
        chosen = random.Random(seed).sample(
            list(MarginAccount.objects.values_list("pk", flat=True)),
            min(count, MarginAccount.objects.count()),
        )
        refused = 0
        for n, account in enumerate(MarginAccount.objects.filter(pk__in=chosen).order_by("pk")):
            key = f"bench-changes-{uuid.uuid4()}"
            held = (
                Position.objects.filter(margin_account=account)
                .exclude(quantity=0)
                .select_related("instrument")
                .order_by("pk")
                .first()
            )
            try:
                if n % 2 or held is None:
                    collateral_deposit(
                        account=account, asset="USDT", amount=Decimal(100), idempotency_key=key
                    )
                else:
                    position_market_fill(
                        account=account,
                        instrument=held.instrument.symbol,
                        side="sell" if held.quantity > 0 else "buy",
                        quantity=(abs(held.quantity) / 10).quantize(Decimal("0.001")),
                        idempotency_key=key,
                    )
            except ApplicationError:
                refused += 1
        self.stdout.write(
            f"{len(chosen)} accounts changed through the services ({refused} refused)"
        )

    def _expire(self, count: int, *, at) -> None:
        """The `count` dated series expiring first and not settled yet expire at `at` at the
        latest."""
        first = Instrument.objects.filter(
            kind__in=(Instrument.Kind.FUTURE, Instrument.Kind.OPTION), settled_at__isnull=True
        ).order_by("expiry", "pk")[:count]
        Instrument.objects.filter(pk__in=list(first.values_list("pk", flat=True))).update(
            expiry=Least(F("expiry"), Value(at))
        )

    def _price_history(self) -> None:
        """Enough market ticks behind now for the stress margin's EWMA volatility, so the tick
        computes it as in operation (one market tick per return period over the window)."""
        now = timezone.now()
        period = return_period_s()
        window = MAX_RETURNS * period
        if AssetPriceHistory.objects.filter(at__gte=now - timedelta(seconds=window)).count() < (
            MAX_RETURNS * Asset.objects.count() // 2
        ):
            for n in range(MAX_RETURNS, -1, -1):
                market_tick_run(now=now - timedelta(seconds=n * period))

    def _naive(self, tick: RevaluationTick, sample: int) -> float:
        """Seconds per account: ORM load, Decimal reference, ORM write (rolled back)."""
        ids = list(MarginAccount.objects.values_list("pk", flat=True))
        chosen = random.Random(7).sample(ids, min(sample, len(ids)))
        with transaction.atomic():
            naive_tick = RevaluationTick.objects.create(
                started_at=timezone.now(), parameter_version=parameters_in_force()
            )
            started = time.perf_counter()
            for pk in chosen:
                account = MarginAccount.objects.get(pk=pk)
                quote = account_state_load(account).quote()
                MarginSnapshot.objects.create(
                    account=account,
                    tick=naive_tick,
                    collateral_value=quote.collateral_value,
                    unrealized_pnl=quote.unrealized_pnl,
                    margin_balance=quote.margin_balance,
                    maintenance_margin=quote.maintenance_margin,
                    initial_margin=quote.initial_margin,
                    margin_ratio=None,
                    withdrawable=quote.withdrawable,
                    state=account.state,
                    positions=np.array(
                        [
                            (
                                int(row.id),
                                float(row.maintenance_margin),
                                row.bracket,
                                np.nan if row.liquidation_price is None else row.liquidation_price,
                                np.nan if row.bankruptcy_price is None else row.bankruptcy_price,
                            )
                            for row in quote.positions
                        ],
                        dtype=MarginSnapshot.POSITION_RECORD,
                    ).tobytes(),
                )
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        return elapsed / len(chosen)

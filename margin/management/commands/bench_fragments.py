"""Time the trader's live fragments on a big book: each rendered through the whole Django stack
(middleware, session, access check, engine, template) as the account's owner polls it."""

import random
import statistics
import time

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import TRADER, ensure_roles
from margin.models import Entry, MarginAccount, MarginSnapshot, Position
from margin.services.revaluation import revaluation_tick_run

FRAGMENTS = (
    ("live", "trader:live", {}),
    ("what-if -20%", "trader:whatif", {"shock": "-20"}),
    ("charts.json", "trader:charts", {}),
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = "p50/p95 of each trader fragment over sampled accounts of a book of N accounts."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--samples", type=int, default=300, help="requests per fragment")
        parser.add_argument(
            "--ticks", type=int, default=3, help="revaluations to run first when none is stored"
        )
        parser.add_argument("--seed", type=int, default=7)

    def _seed(self, accounts: int, ticks: int) -> None:
        if MarginAccount.objects.count() < accounts:
            call_command("seed_book", accounts=accounts, stdout=self.stdout)
        if not MarginSnapshot.objects.exists():
            for _ in range(ticks):
                run = revaluation_tick_run(now=timezone.now())
                self.stdout.write(f"revaluation tick: {run.seconds:.1f} s")

    def _sample(self, samples: int, seed: int) -> list[MarginAccount]:
        """Random accounts holding positions, and the one holding the most (the worst case)."""
        with_positions = MarginAccount.objects.annotate(
            open_positions=Count("positions", filter=~Q(positions__quantity=0))
        ).filter(open_positions__gt=0)
        ids = list(with_positions.values_list("pk", flat=True))
        chosen = random.Random(seed).sample(ids, min(samples, len(ids)))
        chosen.append(with_positions.order_by("-open_positions").values_list("pk", flat=True)[0])
        sample = list(MarginAccount.objects.filter(pk__in=chosen).select_related("owner"))
        # seed_book's owners hold no role: the sampled ones become traders to see their pages.
        ensure_roles()
        traders = Group.objects.get(name=TRADER)
        for account in sample:
            account.owner.groups.add(traders)
        return sample

    def handle(self, *args, accounts, samples, ticks, seed, **options):
        self._seed(accounts, ticks)
        sample = self._sample(samples, seed)
        held = [
            Position.objects.filter(margin_account=a).exclude(quantity=0).count() for a in sample
        ]
        self.stdout.write(
            f"book: {MarginAccount.objects.count()} accounts, "
            f"{Position.objects.exclude(quantity=0).count()} open positions, "
            f"{Entry.objects.count()} ledger entries, "
            f"{MarginSnapshot.objects.count()} snapshots; sampled {len(sample)} accounts holding "
            f"{min(held)}..{max(held)} positions (median {statistics.median(held):g})"
        )
        client = Client(HTTP_HX_REQUEST="true", HTTP_HOST="localhost")
        timings: dict[str, list[float]] = {label: [] for label, _, _ in FRAGMENTS}
        queries: dict[str, set[int]] = {label: set() for label, _, _ in FRAGMENTS}
        for account in sample:
            client.force_login(account.owner)
            for label, name, query in FRAGMENTS:
                url = reverse(name, args=[account.pk])
                started = time.perf_counter()
                response = client.get(url, query)
                timings[label].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                with CaptureQueriesContext(connection) as captured:
                    client.get(url, query)
                queries[label].add(len(captured))
        self.stdout.write(f"{'fragment':<14} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  queries")
        for label, values in timings.items():
            counts = sorted(queries[label])
            self.stdout.write(
                f"{label:<14} {percentile(values, 0.5):8.1f} {percentile(values, 0.95):8.1f} "
                f"{max(values):8.1f}  {counts[0]}..{counts[-1]}"
            )

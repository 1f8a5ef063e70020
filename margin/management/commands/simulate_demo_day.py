"""python manage.py simulate_demo_day [--hours 24] [--step 10]: run the demo market over that
much market time on a simulated clock (market and revaluation ticks, funding, expiries,
liquidations) against this database, then check the ledger. Prints the figures; exit status 1
if the ledger check finds a difference. For the demo's database: it books real cash flows."""

import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from margin.bench.demo_day import demo_day_run
from margin.models import MarginAccount, Position


class Command(BaseCommand):
    help = "Simulate a day of the demo market (funding, expiries) and check the ledger."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=24.0, help="market hours to run")
        parser.add_argument("--step", type=float, default=10.0, help="real seconds per tick")

    def handle(self, *args, hours: float, step: float, **options):
        accounts = MarginAccount.objects.count()
        positions = Position.objects.exclude(quantity=0).count()
        day = demo_day_run(start=timezone.now(), market_hours=hours, step_s=step)
        ledger = day.ledger
        differences = (
            len(ledger.assets_not_zero)
            + len(ledger.journals_not_balanced)
            + len(ledger.balances_off)
            + ledger.entries_in_wrong_asset
        )
        self.stdout.write(
            f"accounts={accounts} open_positions={positions} market_hours={day.market_hours:g} "
            f"ticks={day.ticks} clock={day.started:%H:%M:%S}..{day.ended:%H:%M:%S} "
            f"funding_times={day.funding_times} funding_payments={day.funding_payments} "
            f"futures_settled={','.join(day.futures_settled) or '-'} "
            f"futures_listed={','.join(day.futures_listed) or '-'} "
            f"expiry_notices={day.expiry_notices} liquidations={day.liquidations} "
            f"run_s={day.seconds:.1f}"
        )
        self.stdout.write(
            f"ledger check: {ledger.entries} entries on {ledger.ledger_accounts} ledger "
            f"accounts, {differences} differences"
        )
        if differences:
            sys.exit(1)

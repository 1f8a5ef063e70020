import time

from django.core.management.base import BaseCommand, CommandError

from margin.errors import ApplicationError
from margin.services.book_seed import book_reset, book_seed


class Command(BaseCommand):
    help = (
        "Fill PostgreSQL with a realistic book (book-NNNNNN users, one margin account each) "
        "through the ledger's rules, bulk-loaded with COPY. --reset removes a previous book first."
    )
    # A load command: it must run even while a page elsewhere fails its checks.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--positions", type=int, default=500_000)
        parser.add_argument("--seed", type=int, default=7, help="random seed: same seed, same book")
        parser.add_argument(
            "--option-share",
            type=float,
            default=0.0,
            help="share of the positions that are options on the listed BTC/ETH series",
        )
        parser.add_argument("--reset", action="store_true", help="remove the previous book first")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            if options["reset"]:
                removed = book_reset()
                elapsed = time.monotonic() - started
                self.stdout.write(f"removed the previous book ({removed} rows) in {elapsed:.1f} s")
            seeded = book_seed(
                accounts=options["accounts"],
                positions=options["positions"],
                seed=options["seed"],
                option_share=options["option_share"],
                say=self.stdout.write,
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"seeded {seeded.accounts} accounts, {seeded.positions} positions, {seeded.journals} "
            f"journals, {seeded.entries} entries in {seeded.seconds:.1f} s "
            f"(total with reset {time.monotonic() - started:.1f} s)"
        )

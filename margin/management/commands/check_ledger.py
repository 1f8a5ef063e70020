import sys

from django.core.management.base import BaseCommand

from margin.selectors.ledger import ledger_differences


class Command(BaseCommand):
    # An operations command: it must run even while a page elsewhere fails its checks.
    requires_system_checks = []
    help = (
        "Prove the whole book: per-asset sums of entries are 0, every journal balances, every "
        "balance equals the sum of its entries. Prints the differences; exit status 1 if any."
    )

    def handle(self, *args, **options) -> None:
        found = ledger_differences()
        for asset, total in found.assets_not_zero:
            self.stdout.write(f"asset {asset}: entries sum to {total}, not 0")
        for journal, asset, total in found.journals_not_balanced:
            self.stdout.write(f"journal {journal} {asset}: entries sum to {total}, not 0")
        for account, asset, balance, total in found.balances_off:
            self.stdout.write(
                f"ledger account {account} {asset}: balance {balance} but entries sum to {total} "
                f"(difference {balance - total})"
            )
        if found.entries_in_wrong_asset:
            self.stdout.write(
                f"{found.entries_in_wrong_asset} entries are not in their account's asset"
            )
        self.stdout.write(
            f"checked {found.entries} entries on {found.ledger_accounts} ledger accounts: "
            + ("0 differences" if found.clean else "DIFFERENCES FOUND")
        )
        if not found.clean:
            sys.exit(1)

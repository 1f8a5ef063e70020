"""The demo's synthetic book: a few thousand accounts seeded by `book_seed` (the scale book's
own generator and loader, on SQLite as on PostgreSQL) and a funded insurance fund, so that under
`make run` the desk's queue, heat map, stress runs and cascades have something real to show."""

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import User
from margin.models import LedgerAccount, LedgerAccountKind
from margin.services.book_seed import BOOK_USER_PREFIX, book_seed
from margin.services.liquidation import insurance_fund_deposit

# The fund a venue of this book's size would hold: about what the book's few largest
# liquidations could leave unpaid, so a cascade draws on it without emptying it at once.
DEMO_INSURANCE_FUND = Decimal("2500000")


@dataclass(frozen=True)
class DemoBook:
    accounts_seeded: int  # 0 when a book was already there
    positions_seeded: int
    insurance_deposit: Decimal  # 0 when the fund already held money


def demo_book_ensure(*, accounts: int, positions: int, seed: int = 20) -> DemoBook:
    """Seed the book unless one is there, and fund the insurance fund unless it holds money:
    safe to rerun, as `make run` does on every start."""
    seeded = None
    if accounts and not User.objects.filter(username__startswith=BOOK_USER_PREFIX).exists():
        seeded = book_seed(accounts=accounts, positions=positions, seed=seed, say=lambda _: None)
    funded = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.INSURANCE, margin_account__isnull=True, balance__gt=0
    ).exists()
    if not funded:
        insurance_fund_deposit(amount=DEMO_INSURANCE_FUND, memo="demo: the fund's opening capital")
    return DemoBook(
        accounts_seeded=seeded.accounts if seeded else 0,
        positions_seeded=seeded.positions if seeded else 0,
        insurance_deposit=Decimal(0) if funded else DEMO_INSURANCE_FUND,
    )

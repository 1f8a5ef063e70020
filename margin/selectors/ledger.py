"""Reads of the double-entry ledger: an account's postings and the whole ledger's check."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from margin.models import Entry, LedgerAccount, MarginAccount


def ledger_history(
    *, account: MarginAccount | None, filters: dict | None = None
) -> QuerySet[Entry]:
    """The entries on the account's ledger accounts (cross wallets and isolated margins), newest
    first; none for no account. `filters`: `asset` (symbol), `kind` (journal kind), `since` /
    `until` (datetimes)."""
    if account is None:
        return Entry.objects.none()
    filters = filters or {}
    entries = Entry.objects.filter(ledger_account__margin_account=account)
    if filters.get("asset"):
        entries = entries.filter(asset__symbol=filters["asset"])
    if filters.get("kind"):
        entries = entries.filter(journal__kind=filters["kind"])
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since:
        entries = entries.filter(journal__created_at__gte=since)
    if until:
        entries = entries.filter(journal__created_at__lt=until)
    return entries.select_related(
        "journal", "asset", "ledger_account__position__instrument"
    ).order_by("-pk")


@dataclass(frozen=True)
class LedgerDifferences:
    """Everything that would prove the book wrong; all empty when it is right."""

    assets_not_zero: list[tuple[str, Decimal]]  # asset, sum of all its entries
    journals_not_balanced: list[tuple[int, str, Decimal]]  # journal, asset, sum
    balances_off: list[tuple[int, str, Decimal, Decimal]]  # ledger account, asset, balance, sum
    entries_in_wrong_asset: int
    entries: int
    ledger_accounts: int

    @property
    def clean(self) -> bool:
        return not (
            self.assets_not_zero
            or self.journals_not_balanced
            or self.balances_off
            or self.entries_in_wrong_asset
        )


def ledger_differences() -> LedgerDifferences:
    """The whole book checked in the database: each asset's entries sum to zero, each journal
    balances per asset, each balance equals the sum of its entries, each entry is in its
    account's asset."""
    if connection.vendor == "sqlite":
        return _differences_in_python()
    asset_totals = (
        Entry.objects.values("asset__symbol").annotate(total=Sum("amount")).exclude(total=0)
    )
    journals = (
        Entry.objects.values("journal_id", "asset__symbol")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("journal_id")
    )
    sums = (
        Entry.objects.filter(ledger_account=OuterRef("pk"))
        .values("ledger_account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    balances = (
        LedgerAccount.objects.annotate(total=Coalesce(Subquery(sums), Value(Decimal(0))))
        .exclude(balance=F("total"))
        .values_list("pk", "asset__symbol", "balance", "total")
        .order_by("pk")
    )
    return LedgerDifferences(
        assets_not_zero=[(row["asset__symbol"], row["total"]) for row in asset_totals],
        journals_not_balanced=[
            (row["journal_id"], row["asset__symbol"], row["total"]) for row in journals[:1000]
        ],
        balances_off=list(balances[:1000]),
        entries_in_wrong_asset=Entry.objects.exclude(asset=F("ledger_account__asset")).count(),
        entries=Entry.objects.count(),
        ledger_accounts=LedgerAccount.objects.count(),
    )


def _differences_in_python() -> LedgerDifferences:
    """The same checks with Decimal sums: SQLite keeps NUMERIC as floating point, and its SUM
    of many entries misses an exact balance by a float's last digit (the embedded demo's book
    is small enough to sum here)."""
    assets: dict[str, Decimal] = defaultdict(Decimal)
    journals: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    accounts: dict[int, Decimal] = defaultdict(Decimal)
    wrong_asset = entries = 0
    for journal_id, ledger_id, symbol, own_asset, asset, amount in Entry.objects.values_list(
        "journal_id",
        "ledger_account_id",
        "asset__symbol",
        "ledger_account__asset_id",
        "asset_id",
        "amount",
    ).order_by("journal_id", "pk"):
        assets[symbol] += amount
        journals[journal_id, symbol] += amount
        accounts[ledger_id] += amount
        wrong_asset += own_asset != asset
        entries += 1
    ledger_accounts = list(
        LedgerAccount.objects.values_list("pk", "asset__symbol", "balance").order_by("pk")
    )
    return LedgerDifferences(
        assets_not_zero=[(symbol, total) for symbol, total in assets.items() if total],
        journals_not_balanced=[
            (journal, symbol, total) for (journal, symbol), total in journals.items() if total
        ][:1000],
        balances_off=[
            (pk, symbol, balance, accounts[pk])
            for pk, symbol, balance in ledger_accounts
            if balance != accounts[pk]
        ][:1000],
        entries_in_wrong_asset=wrong_asset,
        entries=entries,
        ledger_accounts=len(ledger_accounts),
    )

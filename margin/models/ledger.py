"""The append-only double-entry ledger.

Every movement of money is a `Journal` of `Entry` rows whose amounts sum to zero per asset;
PostgreSQL enforces it with a deferred constraint trigger, and refuses UPDATE and DELETE of
entries (migration `ledger_triggers`). `LedgerAccount.balance` is kept equal to the sum of its
entries by the posting service, and `manage.py check_ledger` proves it over the whole book.

An entry's (ledger account, asset) is one foreign key in the database, to the ledger account's
(id, asset) (migration `entry_ledger_account_asset`): an entry in another asset than its ledger
account's cannot be written, and PostgreSQL checks one key per entry where the two
single-column keys cost two queries (a funding settlement writes ~45,000 entries per shard).
"""

from django.conf import settings
from django.db import models

from margin.models.accounts import MarginAccount
from margin.models.reference import MONEY, Asset


class LedgerAccountKind(models.TextChoices):
    WALLET = "wallet", "Cross wallet"  # a margin account's cross collateral in one asset
    ISOLATED = "isolated", "Isolated margin"  # collateral fenced for one isolated position
    EXTERNAL = "external", "Outside world"  # counterpart of deposits and withdrawals
    FEES = "fees", "Trading and liquidation fee income"
    INSURANCE = "insurance", "Insurance fund"
    MARKET = "market", "Market counterparty"  # counterpart of realized PnL of simulated fills
    FUNDING = "funding", "Funding clearing"


class LedgerAccount(models.Model):
    kind = models.CharField(max_length=16, choices=LedgerAccountKind.choices)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="ledger_accounts")
    margin_account = models.ForeignKey(
        MarginAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    position = models.ForeignKey(
        "margin.Position",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    balance = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # Partial unique indexes rather than NULLS NOT DISTINCT: SQLite has only these.
            models.UniqueConstraint(
                fields=["kind", "asset", "margin_account"],
                condition=models.Q(position__isnull=True, margin_account__isnull=False),
                name="ledger_account_unique_per_margin_account",
            ),
            models.UniqueConstraint(
                fields=["asset", "position"],
                condition=models.Q(position__isnull=False),
                name="ledger_account_unique_per_position",
            ),
            models.UniqueConstraint(
                fields=["kind", "asset"],
                condition=models.Q(margin_account__isnull=True),
                name="ledger_account_unique_house",
            ),
            # What the entries' foreign key to (ledger account, asset) references.
            models.UniqueConstraint(fields=["id", "asset"], name="ledger_account_id_asset"),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=["wallet"], margin_account__isnull=False, position__isnull=True
                )
                | models.Q(kind="isolated", margin_account__isnull=False, position__isnull=False)
                | models.Q(
                    kind__in=["external", "fees", "insurance", "market", "funding"],
                    margin_account__isnull=True,
                    position__isnull=True,
                ),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = f" #{self.margin_account_id}" if self.margin_account_id else ""
        return f"{self.kind}{owner} {self.asset_id}"


class JournalKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    ISOLATED_TRANSFER = "isolated_transfer", "Isolated margin transfer"
    REALIZED_PNL = "realized_pnl", "Realized PnL"
    TRADING_FEE = "trading_fee", "Trading fee"
    FUNDING = "funding", "Funding"
    SETTLEMENT = "settlement", "Futures settlement"
    LIQUIDATION_FEE = "liquidation_fee", "Liquidation fee"
    INSURANCE = "insurance", "Insurance fund movement"
    FILL = "fill", "Fill"  # PnL and fee of one fill together
    LIQUIDATION = "liquidation", "Liquidation"
    ADL = "adl", "Auto-deleveraging"
    WRITE_OFF = "write_off", "Loss written off (socialized)"
    OPENING = "opening", "Opening balances"  # a bulk-loaded book's starting point (seed_book)


class Journal(models.Model):
    """One balanced transaction of the ledger."""

    kind = models.CharField(max_length=24, choices=JournalKind.choices)
    margin_account = models.ForeignKey(
        MarginAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="journals"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    memo = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-pk"]


class Entry(models.Model):
    """A signed movement on one ledger account; + increases its balance. Never updated."""

    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="entries")
    # Both checked in the database by one foreign key to the ledger account's (id, asset).
    ledger_account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="entries", db_constraint=False
    )
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["pk"]
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="entry_nonzero")]

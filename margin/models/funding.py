"""Funding of perpetuals and delivery of dated futures.

A `FundingRate` row is one funding time of one perpetual: the rate, how it was reached, and the
settlement it triggered. Its uniqueness per (instrument, funding time) is what makes a replayed
or redelivered settlement claim nothing twice. `FundingPayment` is what one position paid or
received at it (the settlement's journal says it to the ledger, one line per paying ledger
account; this row says which position). A position is paid at most once per rate (a unique
index): the revaluation shards settle their own accounts, and a shard run again, or the next
tick after an abandoned one, pays only the positions not paid yet.

FundingPayment holds no foreign-key constraint in the database: a settlement writes one row
per open perpetual position (≈ 430,000 at 100k accounts) and PostgreSQL checks a constrained
row with a query of its own (≈ 7 µs each, three per row: more than the rest of the settlement).
Its rows are only ever written by the settlement's INSERT ... SELECT from the positions, rates
and journal it has just read or written, none of which is ever deleted (PROTECT, append-only
journals); the ledger's own rows (journals, entries) keep theirs.
"""

from django.db import models

from margin.models.ledger import Journal
from margin.models.positions import Position
from margin.models.reference import MONEY, RATIO, Instrument


class FundingRate(models.Model):
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="funding_rates"
    )
    funding_time = models.DateTimeField()
    average_premium = models.DecimalField(**RATIO)
    interest = models.DecimalField(**RATIO)
    rate = models.DecimalField(**RATIO)
    samples = models.PositiveIntegerField(default=0)
    mark_price = models.DecimalField(**MONEY)
    index_price = models.DecimalField(**MONEY)
    settled_at = models.DateTimeField()
    positions = models.PositiveIntegerField(default=0)
    paid_by_longs = models.DecimalField(**MONEY, default=0)  # signed: + when longs paid
    # When every account has been settled (the revaluation tick that settled it completed);
    # null while the revaluation shards are still settling it.
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-funding_time", "instrument"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "funding_time"], name="funding_rate_once_per_time"
            )
        ]
        indexes = [models.Index(fields=["instrument", "-funding_time"])]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.funding_time:%Y-%m-%d %H:%M} {self.rate}"


class FundingPayment(models.Model):
    funding_rate = models.ForeignKey(
        FundingRate,
        on_delete=models.PROTECT,
        related_name="payments",
        db_constraint=False,
        db_index=False,
    )
    position = models.ForeignKey(
        Position,
        on_delete=models.PROTECT,
        related_name="funding",
        db_constraint=False,
        db_index=False,  # the unique index (position, funding rate) serves the lookups
    )
    journal = models.ForeignKey(
        Journal, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    amount = models.DecimalField(**MONEY, help_text="+ received, − paid.")

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["position", "funding_rate"], name="funding_payment_once_per_rate"
            )
        ]

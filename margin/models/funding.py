"""Funding of perpetuals and delivery of dated futures.

A `FundingRate` row is one funding time of one perpetual: the rate, how it was reached, and the
settlement it triggered. Its uniqueness per (instrument, funding time) is what makes a replayed
or redelivered settlement book nothing twice. `FundingPayment` is what one position paid or
received at it (the per-account journal says it to the ledger; this row says which position).
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
    funding_rate = models.ForeignKey(FundingRate, on_delete=models.PROTECT, related_name="payments")
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="funding")
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY, help_text="+ received, − paid.")

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["position", "funding_rate"])]

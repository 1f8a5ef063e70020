from decimal import Decimal

from django.db import models

from margin.models.accounts import MarginAccount
from margin.models.ledger import Journal
from margin.models.reference import MONEY, Instrument
from margin.vocabulary import MarginMode


class Position(models.Model):
    """One-way mode: one net position per account and instrument (quantity signed, 0 = flat)."""

    margin_account = models.ForeignKey(
        MarginAccount, on_delete=models.PROTECT, related_name="positions"
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    quantity = models.DecimalField(**MONEY, default=0, help_text="+ long, − short, 0 flat.")
    entry_price = models.DecimalField(**MONEY, default=0)
    leverage = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("10"))
    margin_mode = models.CharField(
        max_length=8, choices=MarginMode.choices, default=MarginMode.CROSS
    )
    realized_pnl = models.DecimalField(**MONEY, default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["margin_account", "instrument"], name="one_position_per_instrument"
            ),
            models.CheckConstraint(condition=models.Q(leverage__gte=1), name="leverage_at_least_1"),
            models.CheckConstraint(
                condition=models.Q(quantity=0) | models.Q(entry_price__gt=0),
                name="open_position_has_entry_price",
            ),
        ]
        indexes = [
            # The open positions of a series, by account: an expiry settlement finds a shard's
            # positions of the settled series without reading its closed ones (every
            # position a settled series ever had).
            models.Index(
                fields=["instrument", "margin_account"],
                condition=~models.Q(quantity=0),
                name="position_open_by_instrument",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.quantity} @ {self.entry_price}"

    @property
    def side(self) -> str:
        return "long" if self.quantity > 0 else "short" if self.quantity < 0 else "flat"


class Fill(models.Model):
    """A trade against the (simulated) market; its PnL and fee are one journal."""

    class Reason(models.TextChoices):
        TRADE = "trade", "Trade"
        LIQUIDATION = "liquidation", "Liquidation"
        ADL = "adl", "Auto-deleveraging"
        DESK = "desk", "Desk forced reduction"
        SETTLEMENT = "settlement", "Settlement at expiry"

    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="fills")
    quantity = models.DecimalField(**MONEY, help_text="Signed: + buy, − sell.")
    price = models.DecimalField(**MONEY)
    fee = models.DecimalField(**MONEY, default=0)
    realized_pnl = models.DecimalField(**MONEY, default=0)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.TRADE)
    journal = models.ForeignKey(
        Journal, null=True, blank=True, on_delete=models.PROTECT, related_name="fills"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(quantity=0), name="fill_nonzero"),
            # An option expiring out of the money settles at 0.
            models.CheckConstraint(
                condition=models.Q(price__gt=0) | models.Q(price=0, reason="settlement"),
                name="fill_price_positive",
            ),
            # A position of an expired series is closed once by its settlement (a retried
            # settlement of a shard's accounts must not pay twice).
            models.UniqueConstraint(
                fields=["position"],
                condition=models.Q(reason="settlement"),
                name="fill_settlement_once",
            ),
        ]

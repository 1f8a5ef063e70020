"""Price sources, the guard's log and price history.

Sources (the demo market's simulated venues, or real feeds) write their latest quote per
symbol; the price service turns the fresh, plausible ones into the index and mark prices of
`margin.models.prices` and appends them to the history that charts and the stress margin's
EWMA volatility read.
"""

from django.db import models

from margin.models.reference import MONEY, RATIO, Asset, Instrument
from margin.vocabulary import GuardRejectionReason


class QuoteKind(models.TextChoices):
    SPOT = "spot", "Spot price of an asset"  # feeds the asset's index
    PERP = "perp", "Traded price of an instrument"  # feeds the instrument's mark basis
    VOL = "vol", "Implied vol of an option series"  # the vol surface's, through the vol guard


class SourceQuote(models.Model):
    """The latest price one source quoted for one symbol (an asset or an instrument)."""

    source = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=QuoteKind.choices)
    symbol = models.CharField(max_length=32)
    price = models.DecimalField(**MONEY)
    quoted_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "symbol", "source"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "symbol"], name="source_quote_latest_per_symbol"
            ),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="source_quote_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.symbol} {self.price} @ {self.quoted_at:%H:%M:%S}"


class GuardRejection(models.Model):
    """A quote the price guard did not count as printed, and why: left out (stale, moved too
    far alone), capped to the median, or part of a symbol whose sources made no quorum."""

    Reason = GuardRejectionReason

    at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=QuoteKind.choices)
    symbol = models.CharField(max_length=32)
    price = models.DecimalField(**MONEY)
    reference_price = models.DecimalField(**MONEY, null=True, blank=True)
    # The price it counted at (a capped print); null: it counted for nothing.
    counted_price = models.DecimalField(**MONEY, null=True, blank=True)
    reason = models.CharField(max_length=8, choices=Reason.choices)
    detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.source} {self.symbol} {self.price}: {self.reason}"


class AssetPriceHistory(models.Model):
    """Accepted index prices of an asset over time (charts, EWMA volatility); pruned by age."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="price_history")
    at = models.DateTimeField()
    price = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["asset", "at"]
        indexes = [models.Index(fields=["asset", "at"]), models.Index(fields=["at"])]


class MarkPriceHistory(models.Model):
    """Mark and index prices of an instrument over time; pruned by age."""

    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="mark_history"
    )
    at = models.DateTimeField()
    mark_price = models.DecimalField(**MONEY)
    index_price = models.DecimalField(**MONEY)
    # An option's: the surface's implied vol it was marked at (the index column its forward).
    implied_vol = models.DecimalField(**RATIO, null=True, blank=True, db_default=None)

    class Meta:
        ordering = ["instrument", "at"]
        indexes = [models.Index(fields=["instrument", "at"]), models.Index(fields=["at"])]


class SimulatedAsset(models.Model):
    """The demo market's hidden state for one asset: its 'true' price and the current regime."""

    class Regime(models.TextChoices):
        CALM = "calm", "Calm"
        STRESSED = "stressed", "Stressed"

    asset = models.OneToOneField(
        Asset, on_delete=models.CASCADE, primary_key=True, related_name="simulation"
    )
    price = models.DecimalField(**MONEY)
    regime = models.CharField(max_length=8, choices=Regime.choices, default=Regime.CALM)
    stepped_at = models.DateTimeField()
    # The last jump (its log return, when): the volatility surface reacts to it.
    last_jump_log_return = models.DecimalField(**RATIO, default=0, db_default=0)
    last_jump_at = models.DateTimeField(null=True, blank=True, db_default=None)

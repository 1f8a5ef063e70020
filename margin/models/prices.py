"""The latest prices every service reads; the revaluation job keeps them fresh."""

from django.db import models

from margin.models.reference import MONEY, RATIO, Asset, Instrument


class AssetPrice(models.Model):
    """Latest accepted USD index price of an asset (collateral valuation)."""

    asset = models.OneToOneField(
        Asset, on_delete=models.PROTECT, primary_key=True, related_name="price"
    )
    price = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField()
    # Why this is the last index held rather than a new one (no quorum of fresh, agreeing
    # sources); "" when the price is fit. Nothing is liquidated on an uncertain price.
    uncertain_reason = models.CharField(max_length=200, blank=True, default="")
    # USD of the asset its spot markets trade per day: what selling a holding
    # runs into (the liquidity haircut); None when unknown (no haircut).
    depth_usd = models.DecimalField(**MONEY, null=True, blank=True, db_default=None)

    @property
    def uncertain(self) -> bool:
        return bool(self.uncertain_reason)


class MarkPrice(models.Model):
    """Latest mark price of an instrument: the median of index + smoothed basis, index +
    funding basis and the last traded price (`margin.engine.prices.mark_price`). An option's
    mark is its Black-76 premium: `index_price` then holds the forward it was priced on (the
    underlying perpetual's mark) and `implied_vol` the surface's vol
    (`margin.services.option_marks`)."""

    class Binding(models.TextChoices):
        BASIS = "basis", "Index + smoothed basis"
        FUNDING = "funding", "Index + funding basis"
        LAST = "last", "Last traded price"
        BLACK76 = "black76", "Black-76 on the volatility surface"

    instrument = models.OneToOneField(
        Instrument, on_delete=models.PROTECT, primary_key=True, related_name="mark"
    )
    mark_price = models.DecimalField(**MONEY)
    index_price = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField()
    # The three terms of the median and the one that is the mark.
    basis_price = models.DecimalField(**MONEY, null=True, blank=True)
    funding_price = models.DecimalField(**MONEY, null=True, blank=True)
    last_price = models.DecimalField(**MONEY, null=True, blank=True)
    binding = models.CharField(max_length=8, choices=Binding.choices, default=Binding.BASIS)
    # Why the mark holds (its underlying's index is uncertain); "" when it is fit.
    uncertain_reason = models.CharField(max_length=200, blank=True, default="")
    # USD of the instrument traded per day: what closing a position runs into
    # (the liquidity add-on); None when unknown (no add-on).
    depth_usd = models.DecimalField(**MONEY, null=True, blank=True, db_default=None)
    # An option's: the surface's implied vol its mark was priced at.
    implied_vol = models.DecimalField(**RATIO, null=True, blank=True, db_default=None)

    @property
    def uncertain(self) -> bool:
        return bool(self.uncertain_reason)

"""The latest prices every service reads; the revaluation job (issue 6) keeps them fresh."""

from django.db import models

from margin.models.reference import MONEY, Asset, Instrument


class AssetPrice(models.Model):
    """Latest accepted USD index price of an asset (collateral valuation)."""

    asset = models.OneToOneField(
        Asset, on_delete=models.PROTECT, primary_key=True, related_name="price"
    )
    price = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField()


class MarkPrice(models.Model):
    """Latest mark price of an instrument: index plus a smoothed basis."""

    instrument = models.OneToOneField(
        Instrument, on_delete=models.PROTECT, primary_key=True, related_name="mark"
    )
    mark_price = models.DecimalField(**MONEY)
    index_price = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField()

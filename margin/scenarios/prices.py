"""A scenario's price steps written as the market would: `index` prices accepted directly,
`quotes` through the price guard, marks from the index by the product's mark rule.

Every venue and price not named at a step carries forward and counts as freshly quoted at
that step; a venue given as null is silent from then on and its last print ages (so an asset
whose venues are all silent turns stale once the guard's age limit passes).
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from margin.engine.quotes import SPOT, Quote
from margin.models import (
    Asset,
    AssetPrice,
    AssetPriceHistory,
    GuardRejection,
    Instrument,
    MarkPrice,
    MarkPriceHistory,
)
from margin.scenarios.loader import PriceStep, ScenarioError
from margin.services.prices import prices_refresh, quotes_record


@dataclass
class ScenarioMarket:
    """What the steps so far have said: each asset's index (direct) or venue prints."""

    index: dict[str, Decimal] = field(default_factory=dict)
    venues: dict[str, dict[str, Decimal | None]] = field(default_factory=dict)
    basis: dict[str, Decimal] = field(default_factory=dict)

    def check(self, step: PriceStep, path: str) -> None:
        assets = set(Asset.objects.values_list("symbol", flat=True))
        instruments = set(Instrument.objects.values_list("symbol", flat=True))
        for part, known in (("index", assets), ("quotes", assets), ("marks", instruments)):
            for name in getattr(step, part):
                if name not in known:
                    raise ScenarioError(f"{path}.{part}.{name}", "unknown symbol")

    def apply(self, step: PriceStep, *, now: datetime) -> list[GuardRejection]:
        """Write this step's prices at market time `now`; the guard's rejections of it."""
        for asset, price in step.index.items():
            self.index[asset] = price
            self.venues.pop(asset, None)
        for asset, prints in step.quotes.items():
            self.index.pop(asset, None)
            self.venues.setdefault(asset, {}).update(prints)
        quotes_record(
            quotes=[
                Quote(venue, SPOT, asset, price, now)
                for asset, prints in self.venues.items()
                for venue, price in prints.items()
                if price is not None
            ]
        )
        prices_refresh(now=now)
        self._index_write(now)
        self._marks_write(step.marks, now)
        return list(GuardRejection.objects.filter(at=now).order_by("pk"))

    def _index_write(self, now: datetime) -> None:
        assets = dict(Asset.objects.filter(symbol__in=self.index).values_list("symbol", "pk"))
        AssetPrice.objects.bulk_create(
            [
                AssetPrice(asset_id=assets[s], price=p, updated_at=now, uncertain_reason="")
                for s, p in self.index.items()
            ],
            update_conflicts=True,
            unique_fields=["asset"],
            # Accepted directly: the guard was not asked, so it has no doubt to record.
            update_fields=["price", "updated_at", "uncertain_reason"],
        )
        AssetPriceHistory.objects.bulk_create(
            [AssetPriceHistory(asset_id=assets[s], at=now, price=p) for s, p in self.index.items()]
        )

    def _marks_write(self, given: dict[str, Decimal], now: datetime) -> None:
        """Mark = index + basis for every instrument whose underlying has an index of this
        step: the basis a step's `marks` gives (mark − index), else the one carried from the
        steps before (0 from the first step on), as `smoothed_basis` keeps it without a trade.
        An instrument whose index did not update keeps its mark, which ages."""
        fresh = dict(
            AssetPrice.objects.filter(updated_at=now, uncertain_reason="").values_list(
                "asset__symbol", "price"
            )
        )
        rows = []
        for instrument in Instrument.objects.filter(
            is_active=True, underlying__symbol__in=fresh
        ).select_related("underlying"):
            index = fresh[instrument.underlying.symbol]
            if instrument.symbol in given:
                self.basis[instrument.symbol] = given[instrument.symbol] - index
            basis = self.basis.get(instrument.symbol, Decimal(0))
            rows.append(
                MarkPrice(
                    instrument=instrument,
                    mark_price=index + basis,
                    index_price=index,
                    updated_at=now,
                    uncertain_reason="",
                )
            )
        MarkPrice.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["instrument"],
            update_fields=["mark_price", "index_price", "updated_at", "uncertain_reason"],
        )
        MarkPriceHistory.objects.bulk_create(
            MarkPriceHistory(
                instrument=m.instrument, at=now, mark_price=m.mark_price, index_price=m.index_price
            )
            for m in rows
        )

"""Writes of prices: source quotes in, guarded index and smoothed mark out, history kept.

`demo_market_step` is the demo market (a source); `prices_refresh` is what a real deployment
runs too: it reads every source's latest quote, guards them (`margin.market.guard`), and updates
AssetPrice/MarkPrice (the latest prices every service reads) and their history.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import transaction

from margin.market.demo import MarketState, market_step, start_price, venue_quotes
from margin.market.guard import guarded_price
from margin.market.mark import smoothed_basis
from margin.market.quotes import PERP, SPOT, Quote
from margin.models import (
    Asset,
    AssetPrice,
    AssetPriceHistory,
    GuardRejection,
    Instrument,
    MarkPrice,
    MarkPriceHistory,
    SimulatedAsset,
    SourceQuote,
)
from margin.services.reference import parameters_in_force

logger = logging.getLogger(__name__)

# A demo market that was not stepped for a while resumes with one bounded step, not a jump
# over the whole pause.
MAX_DEMO_STEP_S = 10.0


def quotes_record(*, quotes: Iterable[Quote]) -> int:
    """Store each source's latest quote per symbol (replacing its previous one)."""
    rows = [
        SourceQuote(source=q.source, kind=q.kind, symbol=q.symbol, price=q.price, quoted_at=q.at)
        for q in quotes
    ]
    SourceQuote.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["source", "kind", "symbol"],
        update_fields=["price", "quoted_at"],
    )
    return len(rows)


@transaction.atomic
def demo_market_step(*, now: datetime, rng: np.random.Generator | None = None) -> list[Quote]:
    """Move the demo market's true prices to `now` and record every venue's quotes."""
    rng = rng or np.random.default_rng()
    assets = list(Asset.objects.order_by("pk"))
    known = set(SimulatedAsset.objects.values_list("asset_id", flat=True))
    latest = dict(AssetPrice.objects.values_list("asset_id", "price"))
    SimulatedAsset.objects.bulk_create(
        [
            SimulatedAsset(
                asset=asset,
                price=latest.get(asset.pk) or Decimal(str(start_price(asset.symbol))),
                stepped_at=now,
            )
            for asset in assets
            if asset.pk not in known
        ],
        ignore_conflicts=True,
    )
    simulated = list(
        SimulatedAsset.objects.select_for_update().select_related("asset").order_by("pk")
    )
    if not simulated:
        return []
    elapsed = min(max((now - simulated[0].stepped_at).total_seconds(), 0.0), MAX_DEMO_STEP_S)
    state = market_step(
        MarketState(
            symbols=tuple(s.asset.symbol for s in simulated),
            prices=np.array([float(s.price) for s in simulated]),
            regime=simulated[0].regime,
        ),
        dt_s=elapsed * settings.DEMO_MARKET_SPEED,
        rng=rng,
    )
    for sim, price in zip(simulated, state.prices, strict=True):
        sim.price, sim.regime, sim.stepped_at = Decimal(f"{price:.12g}"), state.regime, now
    SimulatedAsset.objects.bulk_update(simulated, ["price", "regime", "stepped_at"])
    instruments = Instrument.objects.filter(is_active=True).values_list(
        "symbol", "underlying__symbol"
    )
    quotes = venue_quotes(
        asset_prices=dict(zip(state.symbols, state.prices.tolist(), strict=True)),
        instruments=list(instruments),
        at=now,
        rng=rng,
    )
    quotes_record(quotes=quotes)
    return quotes


@dataclass(frozen=True)
class RefreshResult:
    asset_prices: dict[str, Decimal]
    marks: dict[str, Decimal]
    rejected: int


def _quotes_by_symbol() -> dict[tuple[str, str], list[Quote]]:
    grouped: dict[tuple[str, str], list[Quote]] = defaultdict(list)
    for row in SourceQuote.objects.all():
        grouped[row.kind, row.symbol].append(
            Quote(row.source, row.kind, row.symbol, row.price, row.quoted_at)
        )
    return grouped


def _rejection(quote: Quote, reason: str, reference: Decimal | None, now: datetime):
    logger.warning(
        "price guard left out %s %s %s from %s (%s, reference %s)",
        quote.kind,
        quote.symbol,
        quote.price,
        quote.source,
        reason,
        reference,
    )
    return GuardRejection(
        at=now,
        source=quote.source,
        kind=quote.kind,
        symbol=quote.symbol,
        price=quote.price,
        reference_price=reference,
        reason=reason,
    )


def _basis(previous: MarkPrice | None, *, perp_price, index: Decimal, now: datetime) -> Decimal:
    if previous is None:
        return perp_price - index if perp_price is not None else Decimal(0)
    return smoothed_basis(
        previous_basis=previous.mark_price - previous.index_price,
        perp_price=perp_price,
        index_price=index,
        elapsed_s=(now - previous.updated_at).total_seconds(),
    )


@transaction.atomic
def prices_refresh(*, now: datetime) -> RefreshResult:
    """Guarded index of every asset, mark of every active instrument; history appended.

    A symbol none of whose quotes passes the guard keeps its last price and its `updated_at`,
    so it shows as stale once that is older than `price_guard_max_age_s`.
    """
    params = parameters_in_force(now)
    guard = {
        "now": now,
        "max_move": params.price_guard_max_move,
        "max_age_s": params.price_guard_max_age_s,
    }
    quotes = _quotes_by_symbol()
    last_index = {p.asset_id: p for p in AssetPrice.objects.select_for_update().order_by("pk")}
    last_mark = {m.instrument_id: m for m in MarkPrice.objects.select_for_update().order_by("pk")}
    rejections: list[GuardRejection] = []

    index_now: dict[int, Decimal] = {}
    new_asset_prices = {}
    for asset in Asset.objects.order_by("pk"):
        previous = last_index.get(asset.pk)
        reference = previous.price if previous else None
        guarded = guarded_price(quotes[SPOT, asset.symbol], last_price=reference, **guard)
        rejections += [_rejection(q, why, reference, now) for q, why in guarded.rejected]
        if guarded.price is not None:
            index_now[asset.pk] = guarded.price
            new_asset_prices[asset.symbol] = guarded.price

    marks = []
    new_marks = {}
    for instrument in Instrument.objects.filter(is_active=True).select_related("underlying"):
        index = index_now.get(instrument.underlying_id)
        if index is None:
            continue
        previous = last_mark.get(instrument.pk)
        reference = previous.mark_price if previous else None
        perp = guarded_price(quotes[PERP, instrument.symbol], last_price=reference, **guard)
        rejections += [_rejection(q, why, reference, now) for q, why in perp.rejected]
        basis = _basis(previous, perp_price=perp.price, index=index, now=now)
        mark = index + basis
        marks.append(MarkPrice(instrument=instrument, mark_price=mark, index_price=index))
        new_marks[instrument.symbol] = mark

    AssetPrice.objects.bulk_create(
        [AssetPrice(asset_id=a, price=p, updated_at=now) for a, p in index_now.items()],
        update_conflicts=True,
        unique_fields=["asset"],
        update_fields=["price", "updated_at"],
    )
    for mark in marks:
        mark.updated_at = now
    MarkPrice.objects.bulk_create(
        marks,
        update_conflicts=True,
        unique_fields=["instrument"],
        update_fields=["mark_price", "index_price", "updated_at"],
    )
    AssetPriceHistory.objects.bulk_create(
        [AssetPriceHistory(asset_id=a, at=now, price=p) for a, p in index_now.items()]
    )
    MarkPriceHistory.objects.bulk_create(
        [
            MarkPriceHistory(
                instrument=m.instrument, at=now, mark_price=m.mark_price, index_price=m.index_price
            )
            for m in marks
        ]
    )
    GuardRejection.objects.bulk_create(rejections)
    return RefreshResult(asset_prices=new_asset_prices, marks=new_marks, rejected=len(rejections))


def price_history_prune(*, now: datetime) -> int:
    """Drop price history and guard log rows older than `PRICE_HISTORY_KEEP_S`."""
    cutoff = now - timedelta(seconds=settings.PRICE_HISTORY_KEEP_S)
    removed = 0
    for model in (AssetPriceHistory, MarkPriceHistory, GuardRejection):
        count, _ = model.objects.filter(at__lt=cutoff).delete()
        removed += count
    return removed


def market_tick_run(*, now: datetime) -> RefreshResult:
    """One market tick: the demo market quotes (when it runs), then the prices are refreshed."""
    if settings.DEMO_MARKET_ENABLED:
        demo_market_step(now=now)
    return prices_refresh(now=now)

"""Writes of prices: source quotes in, guarded index and mark out, history kept.

`demo_market_step` is the demo market (a source); `prices_refresh` is what a real deployment
runs too: it reads every source's latest quote, guards them (`margin.engine.guard`: age limit,
move limit, capping to the median, quorum), sets each mark to the median of three
(`margin.engine.prices.mark_price`), marks the options on the vol surface through the vol guard
(`margin.services.option_marks`: move band per tick, the surface's age), and updates
AssetPrice/MarkPrice (the latest prices every service reads, an uncertain one with why) and
their history.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import transaction

from margin.engine.guard import GuardedPrice, guarded_price
from margin.engine.prices import (
    NO_QUORUM,
    IndexRules,
    mark_price,
    seconds_to_funding,
    smoothed_basis,
)
from margin.engine.quotes import PERP, SPOT, Quote
from margin.market.demo import (
    JUMP_RATE,
    PERP_DEPTH_MULTIPLE,
    MarketState,
    market_depth,
    market_step,
    start_price,
    venue_quotes,
)
from margin.models import (
    Asset,
    AssetPrice,
    AssetPriceHistory,
    GuardRejection,
    Instrument,
    MarkPrice,
    MarkPriceHistory,
    ParameterVersion,
    SimulatedAsset,
    SourceQuote,
)
from margin.selectors.funding import last_funding_rates
from margin.selectors.options import surface_inputs
from margin.selectors.parameters import parameters_in_force
from margin.services.option_marks import forwards_of, option_marks, vol_rules

logger = logging.getLogger(__name__)

# A demo market that was not stepped for a while resumes with one bounded step, not a jump
# over the whole pause.
MAX_DEMO_STEP_S = 10.0
ZERO = Decimal(0)


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


def _demo_jump_rate() -> float:
    """Jumps per simulated second: DEMO_MARKET_JUMPS_PER_HOUR is per hour of wall-clock time
    (None: the market model's own rate)."""
    per_hour = settings.DEMO_MARKET_JUMPS_PER_HOUR
    return JUMP_RATE if per_hour is None else per_hour / 3600 / settings.DEMO_MARKET_SPEED


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
    # OF self: a bare FOR UPDATE would lock the joined Asset rows too, and every transaction
    # that wrote a row naming an asset (a price, an entry) would wait at its commit, in its
    # foreign-key check, for this one: the market tick's deadlock with the price refresh.
    simulated = list(
        SimulatedAsset.objects.select_for_update(of=("self",))
        .select_related("asset")
        .order_by("pk")
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
        jump_rate=_demo_jump_rate(),
    )
    for sim, price in zip(simulated, state.prices, strict=True):
        sim.price, sim.regime, sim.stepped_at = Decimal(f"{price:.12g}"), state.regime, now
        if state.jump:
            sim.last_jump_log_return, sim.last_jump_at = Decimal(f"{state.jump:.10f}"), now
    SimulatedAsset.objects.bulk_update(
        simulated, ["price", "regime", "stepped_at", "last_jump_log_return", "last_jump_at"]
    )
    _demo_depth_publish(state)
    # Options have no venue prints: they are marked on the surface (`option_marks`).
    instruments = (
        Instrument.objects.filter(is_active=True)
        .exclude(kind=Instrument.Kind.OPTION)
        .values_list("symbol", "underlying__symbol")
    )
    quotes = venue_quotes(
        asset_prices=dict(zip(state.symbols, state.prices.tolist(), strict=True)),
        instruments=list(instruments),
        at=now,
        rng=rng,
    )
    quotes_record(quotes=quotes)
    return quotes


def _demo_depth_publish(state: MarketState) -> None:
    """The demo market's depth of each asset's spot market and of each instrument (a multiple
    of its underlying's), thinning in the stressed regime: what the liquidity charges read."""
    price_rows_lock()
    for symbol in state.symbols:
        depth = Decimal(f"{market_depth(symbol, state.regime):.6g}")
        AssetPrice.objects.filter(asset__symbol=symbol).update(depth_usd=depth)
        MarkPrice.objects.filter(instrument__underlying__symbol=symbol).exclude(
            instrument__kind=Instrument.Kind.OPTION
        ).update(depth_usd=depth * Decimal(str(PERP_DEPTH_MULTIPLE)))


def price_rows_lock() -> tuple[dict[int, AssetPrice], dict[int, MarkPrice]]:
    """Lock the latest prices, every writer of them in the same order: the asset prices by pk,
    then the marks by pk. The rows by asset id and by instrument id."""
    return (
        {p.asset_id: p for p in AssetPrice.objects.select_for_update().order_by("pk")},
        {m.instrument_id: m for m in MarkPrice.objects.select_for_update().order_by("pk")},
    )


@dataclass(frozen=True)
class RefreshResult:
    asset_prices: dict[str, Decimal]  # new index prices (a held, uncertain one is not new)
    marks: dict[str, Decimal]
    rejected: int
    uncertain: dict[str, str] = field(default_factory=dict)  # symbol: why its price holds


def _quotes_by_symbol() -> dict[tuple[str, str], list[Quote]]:
    grouped: dict[tuple[str, str], list[Quote]] = defaultdict(list)
    for row in SourceQuote.objects.all():
        grouped[row.kind, row.symbol].append(
            Quote(row.source, row.kind, row.symbol, row.price, row.quoted_at)
        )
    return grouped


def index_rules(params: ParameterVersion) -> IndexRules:
    """The index rules of a parameter version."""
    return IndexRules(
        max_age_s=params.price_guard_max_age_s,
        max_move=params.price_guard_max_move,
        source_cap=params.price_guard_source_cap,
        agreement_band=params.price_guard_agreement_band,
        min_sources=params.price_guard_min_sources,
    )


def traded_price_rules(params: ParameterVersion) -> IndexRules:
    """The rules for an instrument's traded prices: the index rules without the quorum. One
    venue's trade is still a trade, and the mark's median of three bounds what it can do."""
    return replace(index_rules(params), min_sources=1, agreement_band=Decimal("Infinity"))


def _rejections(guarded: GuardedPrice, now: datetime) -> list[GuardRejection]:
    rows = []
    for quote, verdict in guarded.verdicts:
        logger.warning(
            "price guard: %s %s %s from %s %s (reference %s)",
            quote.kind,
            quote.symbol,
            quote.price,
            quote.source,
            verdict.reason,
            verdict.reference,
        )
        rows.append(
            GuardRejection(
                at=now,
                source=quote.source,
                kind=quote.kind,
                symbol=quote.symbol,
                price=quote.price,
                reference_price=verdict.reference,
                counted_price=verdict.counted_at,
                reason=verdict.reason,
                detail=guarded.uncertain if verdict.reason == NO_QUORUM else "",
            )
        )
    return rows


def _basis(previous: MarkPrice | None, *, traded, index: Decimal, now: datetime) -> Decimal:
    if previous is None:
        return traded - index if traded is not None else Decimal(0)
    previous_basis = (previous.basis_price or previous.mark_price) - previous.index_price
    return smoothed_basis(
        previous_basis=previous_basis,
        traded_price=traded,
        index=index,
        elapsed_s=(now - previous.updated_at).total_seconds(),
    )


@transaction.atomic
def prices_refresh(
    *, now: datetime, funding_rates: Mapping[str, Decimal] | None = None
) -> RefreshResult:
    """Guarded index of every asset, mark of every active instrument; history appended.

    An asset whose sources make no quorum keeps its last index, marked uncertain with why, and
    its `updated_at`, so it also shows as stale once that is older than the age limit; its
    instruments' marks hold with it. `funding_rates` ({perpetual symbol: last funding rate},
    0 where missing) feeds each perpetual's funding-basis price.
    """
    params = parameters_in_force(now)
    rules, traded_rules = index_rules(params), traded_price_rules(params)
    funding_rates = funding_rates or {}
    quotes = _quotes_by_symbol()
    last_index, last_mark = price_rows_lock()
    rejections: list[GuardRejection] = []

    indexes: dict[int, AssetPrice] = {}
    for asset in Asset.objects.order_by("pk"):
        previous = last_index.get(asset.pk)
        guarded = guarded_price(
            quotes[SPOT, asset.symbol],
            last_price=previous.price if previous else None,
            now=now,
            rules=rules,
        )
        rejections += _rejections(guarded, now)
        if guarded.price is None:
            continue
        held_at = previous.updated_at if guarded.uncertain and previous else now
        indexes[asset.pk] = AssetPrice(
            asset_id=asset.pk,
            price=guarded.price,
            updated_at=held_at,
            uncertain_reason=guarded.uncertain[:200],
        )

    marks: list[MarkPrice] = []
    until_funding = seconds_to_funding(now.timestamp())
    active = list(Instrument.objects.filter(is_active=True).select_related("underlying"))
    for instrument in (i for i in active if not i.is_option):
        index = indexes.get(instrument.underlying_id)
        if index is None:
            continue
        previous = last_mark.get(instrument.pk)
        if index.uncertain:
            if previous is not None:
                previous.instrument = instrument
                why = f"{instrument.underlying.symbol} index uncertain: {index.uncertain_reason}"
                previous.uncertain_reason = why[:200]
                marks.append(previous)
            continue
        traded = guarded_price(
            quotes[PERP, instrument.symbol],
            last_price=(previous.last_price or previous.mark_price) if previous else None,
            now=now,
            rules=traded_rules,
        )
        rejections += _rejections(traded, now)
        is_perpetual = instrument.kind == Instrument.Kind.PERPETUAL
        mark = mark_price(
            index=index.price,
            basis=_basis(previous, traded=traded.price, index=index.price, now=now),
            funding_rate=funding_rates.get(instrument.symbol, ZERO) if is_perpetual else ZERO,
            seconds_until_funding=until_funding,
            last_price=traded.price,
        )
        marks.append(
            MarkPrice(
                instrument=instrument,
                mark_price=mark.price,
                index_price=index.price,
                updated_at=now,
                basis_price=mark.basis_price,
                funding_price=mark.funding_price,
                last_price=mark.last_price,
                binding=mark.binding,
                uncertain_reason="",
            )
        )

    options = option_marks(
        [i for i in active if i.is_option],
        forwards=forwards_of(marks, {pk: p.price for pk, p in indexes.items() if not p.uncertain}),
        surface=surface_inputs(now),
        rules=vol_rules(params),
        previous=last_mark,
        now=now,
    )
    marks += options.marks
    rejections += options.capped

    AssetPrice.objects.bulk_create(
        indexes.values(),
        update_conflicts=True,
        unique_fields=["asset"],
        update_fields=["price", "updated_at", "uncertain_reason"],
    )
    MarkPrice.objects.bulk_create(
        marks,
        update_conflicts=True,
        unique_fields=["instrument"],
        update_fields=[
            "mark_price",
            "index_price",
            "updated_at",
            "basis_price",
            "funding_price",
            "last_price",
            "binding",
            "uncertain_reason",
            "implied_vol",
        ],
    )
    new_indexes = [p for p in indexes.values() if not p.uncertain]
    new_marks = [m for m in marks if not m.uncertain]
    AssetPriceHistory.objects.bulk_create(
        [AssetPriceHistory(asset_id=p.asset_id, at=now, price=p.price) for p in new_indexes]
    )
    MarkPriceHistory.objects.bulk_create(
        [
            MarkPriceHistory(
                instrument=m.instrument,
                at=now,
                mark_price=m.mark_price,
                index_price=m.index_price,
                implied_vol=m.implied_vol,
            )
            for m in new_marks
        ]
    )
    GuardRejection.objects.bulk_create(rejections)
    symbols = {a.pk: a.symbol for a in Asset.objects.all()}
    return RefreshResult(
        asset_prices={symbols[p.asset_id]: p.price for p in new_indexes},
        marks={m.instrument.symbol: m.mark_price for m in new_marks},
        rejected=len(rejections),
        uncertain={
            **{symbols[p.asset_id]: p.uncertain_reason for p in indexes.values() if p.uncertain},
            **{m.instrument.symbol: m.uncertain_reason for m in marks if m.uncertain},
        },
    )


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
    return prices_refresh(now=now, funding_rates=last_funding_rates())

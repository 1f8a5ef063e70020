"""Dated futures and options at expiry (Binance delivery contracts, Deribit's cash-settled
options): holders are told a day of market time before; at expiry the contract stops trading
and every open position is closed at the settlement price, the time-weighted average of the
index over the last 30 minutes (market time) before delivery — an option at its intrinsic value
there, max(0, TWAP − K) for a call, max(0, K − TWAP) for a put, paid through the ledger; the
next quarterly is listed with the same brackets so a future is always live, and the option
terms are listed again (`margin.services.options_listing`).

`expiry_run` is called by the revaluation dispatcher at each tick. Each step is its own
transaction and idempotent: the settlement price is fixed once (the instrument row locked), and
each position closes through `position_fill` with a system key per (contract, position), so a
dispatcher that dies half-way is finished by the next tick.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import transaction

from margin.engine.fills import closing_side
from margin.engine.funding import SETTLEMENT_WINDOW, settlement_price
from margin.market.clock import real_duration
from margin.models import (
    AssetPriceHistory,
    Bracket,
    Fill,
    Instrument,
    MarkPrice,
    Notification,
    Position,
)
from margin.services.options_listing import options_listing_ensure
from margin.services.positions import position_fill

logger = logging.getLogger(__name__)

EXPIRY_NOTICE = timedelta(days=1)
SETTLEMENT_PRICE_QUANTUM = Decimal("1e-8")
# Binance quarterly contracts deliver on the last Friday of March, June, September and
# December at 08:00 UTC.
QUARTER_MONTHS = (3, 6, 9, 12)
DELIVERY_HOUR = 8
DATED_KINDS = (Instrument.Kind.FUTURE, Instrument.Kind.OPTION)


@dataclass
class ExpiryRun:
    notified: int = 0
    settled: list[str] = field(default_factory=list)
    closed: int = 0
    listed: list[str] = field(default_factory=list)


def last_friday(year: int, month: int) -> datetime:
    first_of_next = datetime(year + month // 12, month % 12 + 1, 1, DELIVERY_HOUR, tzinfo=UTC)
    day = first_of_next - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 4) % 7)


def next_quarterly_expiry(after: datetime) -> datetime:
    """The first quarterly delivery time strictly after `after`."""
    year = after.year
    while True:
        for month in QUARTER_MONTHS:
            candidate = last_friday(year, month)
            if candidate > after:
                return candidate
        year += 1


def settlement_price_of(instrument: Instrument) -> Decimal:
    """The index TWAP over the last 30 minutes of market time before the expiry."""
    window = real_duration(SETTLEMENT_WINDOW)
    start = instrument.expiry - window
    history = AssetPriceHistory.objects.filter(asset_id=instrument.underlying_id)
    samples = list(
        history.filter(at__gt=start, at__lte=instrument.expiry).values_list("at", "price")
    )
    before = history.filter(at__lte=start).order_by("-at").values_list("at", "price").first()
    if before:
        samples.append(before)
    if not samples:
        mark = MarkPrice.objects.get(instrument=instrument)
        return mark.index_price
    # Published, like a fill's price, to 8 decimals: a TWAP's division has no end, and a
    # realized PnL on all of it would not survive the embedded demo's floating-point columns.
    return settlement_price(samples, until=instrument.expiry, window=window).quantize(
        SETTLEMENT_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN
    )


def _notify_holders(*, now: datetime) -> int:
    """One notification per account holding a future or an option that expires within a day
    of market time."""
    notice = real_duration(EXPIRY_NOTICE)
    sent = 0
    due = Instrument.objects.filter(
        kind__in=DATED_KINDS,
        is_active=True,
        expiry_notified_at__isnull=True,
        expiry__lte=now + notice,
    )
    for instrument in due.order_by("pk"):
        with transaction.atomic():
            claimed = Instrument.objects.filter(
                pk=instrument.pk, expiry_notified_at__isnull=True
            ).update(expiry_notified_at=now)
            if not claimed:
                continue
            holders = Position.objects.filter(instrument=instrument).exclude(quantity=0)
            notes = [
                Notification(
                    user_id=owner_id,
                    account_id=account_id,
                    kind=Notification.Kind.EXPIRY,
                    text=f"{instrument.symbol} expires at {instrument.expiry:%Y-%m-%d %H:%M} UTC: "
                    + (
                        "open positions will be cash-settled at their intrinsic value on the "
                        "average index price of its last 30 minutes."
                        if instrument.is_option
                        else "open positions will be settled at the average index price of "
                        "its last 30 minutes."
                    )
                    + " Close or roll your position before then to choose your price.",
                )
                for account_id, owner_id in holders.values_list(
                    "margin_account_id", "margin_account__owner_id"
                )
            ]
            Notification.objects.bulk_create(notes)
            sent += len(notes)
    return sent


def _fix_settlement_price(instrument: Instrument, *, now: datetime) -> bool:
    with transaction.atomic():
        locked = Instrument.objects.select_for_update().get(pk=instrument.pk)
        if locked.settled_at is not None:
            return False
        locked.settlement_price = settlement_price_of(locked)
        locked.settled_at = now
        locked.is_active = False
        locked.save(update_fields=["settlement_price", "settled_at", "is_active"])
    logger.info("%s settled at %s", locked.symbol, locked.settlement_price)
    return True


def settlement_value(instrument: Instrument) -> Decimal:
    """What one contract settles at: a future's settlement price, an option's intrinsic value
    on it."""
    price = instrument.settlement_price
    if not instrument.is_option:
        return price
    if instrument.option_type == Instrument.OptionType.CALL:
        return max(Decimal(0), price - instrument.strike)
    return max(Decimal(0), instrument.strike - price)


def _close_at_settlement(instrument: Instrument) -> int:
    closed = 0
    price = settlement_value(instrument)
    positions = (
        Position.objects.filter(instrument=instrument)
        .exclude(quantity=0)
        .select_related("margin_account")
        .order_by("pk")
    )
    for position in positions:
        position_fill(
            account=position.margin_account,
            instrument=instrument.symbol,
            side=closing_side(position.quantity),
            quantity=abs(position.quantity),
            price=price,
            reason=Fill.Reason.SETTLEMENT,
            reference=f"{instrument.symbol}:{position.pk}",
        )
        closed += 1
    return closed


def _list_next_quarterly(expired: Instrument) -> str | None:
    """The next quarterly on the same underlying, with the expired one's brackets in every
    parameter version that has them; None when a later future is already live."""
    if Instrument.objects.filter(
        kind=Instrument.Kind.FUTURE,
        underlying_id=expired.underlying_id,
        is_active=True,
        expiry__gt=expired.expiry,
    ).exists():
        return None
    expiry = next_quarterly_expiry(expired.expiry)
    symbol = f"{expired.underlying.symbol}USDT_{expiry:%y%m%d}"
    while Instrument.objects.filter(symbol=symbol, is_active=False).exists():
        # a contract delivered early (a desk's or a test's expiry) already took the name
        expiry = next_quarterly_expiry(expiry)
        symbol = f"{expired.underlying.symbol}USDT_{expiry:%y%m%d}"
    listed, created = Instrument.objects.get_or_create(
        symbol=symbol,
        defaults={
            "kind": Instrument.Kind.FUTURE,
            "underlying_id": expired.underlying_id,
            "expiry": expiry,
        },
    )
    if created:
        _brackets_copy(expired, listed)
    return symbol


def _brackets_copy(source: Instrument, listed: Instrument) -> None:
    """A newly listed future takes the brackets of the contract it follows, in every version."""
    Bracket.objects.bulk_create(
        Bracket(
            version_id=b.version_id,
            instrument=listed,
            floor=b.floor,
            mmr=b.mmr,
            max_leverage=b.max_leverage,
        )
        for b in Bracket.objects.filter(instrument=source)
    )


def demo_future_ensure(*, now: datetime) -> str | None:
    """The demo market keeps a short-dated BTC future live, so that an expiry, its notice and
    its settlement happen within minutes of real time: when no live BTC future expires within
    twice DEMO_FUTURE_TERM_HOURS of market time, one is listed expiring that term from now,
    with the quarterly's brackets and its index as its first mark. None when one is live (or
    the demo future is off, or there is no quarterly to copy)."""
    if not (settings.DEMO_MARKET_ENABLED and settings.DEMO_FUTURE_ENABLED):
        return None
    term = real_duration(timedelta(hours=settings.DEMO_FUTURE_TERM_HOURS))
    live = Instrument.objects.filter(
        kind=Instrument.Kind.FUTURE, underlying__symbol="BTC", is_active=True, expiry__gt=now
    )
    if live.filter(expiry__lte=now + 2 * term).exists():
        return None
    template = live.select_related("underlying").order_by("-expiry").first()
    if template is None:
        return None
    expiry = (now + term).replace(second=0, microsecond=0) + timedelta(minutes=1)
    symbol = f"{template.underlying.symbol}USDT_{expiry:%y%m%d_%H%M}"
    with transaction.atomic():
        listed, created = Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "kind": Instrument.Kind.FUTURE,
                "underlying_id": template.underlying_id,
                "expiry": expiry,
            },
        )
        if not created:
            return None
        _brackets_copy(template, listed)
        mark = MarkPrice.objects.filter(instrument=template).first()
        if mark is not None:
            MarkPrice.objects.create(
                instrument=listed,
                mark_price=mark.index_price,
                index_price=mark.index_price,
                updated_at=now,
            )
    logger.info("demo future %s listed, expiring at %s", symbol, expiry)
    return symbol


def expiry_run(*, now: datetime) -> ExpiryRun:
    run = ExpiryRun(notified=_notify_holders(now=now))
    due = Instrument.objects.filter(kind__in=DATED_KINDS, settled_at__isnull=True, expiry__lte=now)
    for instrument in due.order_by("pk"):
        if _fix_settlement_price(instrument, now=now):
            run.settled.append(instrument.symbol)
    # every settled future still holding positions (this run's, or one a dead run left)
    holding = (
        Position.objects.filter(
            instrument__kind__in=DATED_KINDS, instrument__settled_at__isnull=False
        )
        .exclude(quantity=0)
        .values("instrument_id")
    )
    for instrument in Instrument.objects.filter(pk__in=holding).order_by("pk"):
        run.closed += _close_at_settlement(instrument)
    settled_futures = Instrument.objects.filter(
        symbol__in=run.settled, kind=Instrument.Kind.FUTURE
    ).values_list("symbol", flat=True)
    for symbol in settled_futures:
        with transaction.atomic():
            listed = _list_next_quarterly(
                Instrument.objects.select_related("underlying").get(symbol=symbol)
            )
        if listed:
            run.listed.append(listed)
    demo = demo_future_ensure(now=now)
    if demo:
        run.listed.append(demo)
    run.listed += options_listing_ensure(now=now)
    return run

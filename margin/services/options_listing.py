"""Listing of options: for BTC and ETH, one expiry per term of OPTION_TERMS_HOURS (market
time), each with calls and puts on a ladder of strikes around the money, listed again as the
series expire (`margin.services.expiry` settles them).

A term is covered by the nearest live expiry not already covering a shorter term that expires
within it; an uncovered term lists a new expiry that term from now, its strikes
`LADDER_STEPS` steps either side of the forward, a step being `STEP_SHARE` of the forward
rounded to one significant figure (BTC at 95,000: steps of 2,000). Each new series gets its
first mark at once, so it trades from its listing.

As the underlying drifts, each live expiry's ladder is re-centred: the strikes the ladder
around today's forward lacks are listed (as Deribit adds strikes to a live expiry when the
underlying moves away from its ladder); the strikes already listed stay, those with open
interest first of all, until they expire.
"""

import logging
import math
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from margin.market.clock import real_duration
from margin.models import Asset, Instrument, MarkPrice
from margin.selectors.options import surface_inputs
from margin.selectors.parameters import parameters_in_force
from margin.services.option_marks import Forward, option_marks, vol_rules

logger = logging.getLogger(__name__)

OPTION_UNDERLYINGS = ("BTC", "ETH")
LADDER_STEPS = 3
STEP_SHARE = 0.025


def strike_step(forward: float) -> Decimal:
    """STEP_SHARE of the forward to one significant figure."""
    raw = forward * STEP_SHARE
    exponent = math.floor(math.log10(raw))
    return Decimal(round(raw / 10**exponent)) * Decimal(10) ** exponent


def strike_ladder(forward: Decimal) -> list[Decimal]:
    """The at-the-money strike (the forward to the step) and LADDER_STEPS steps either side."""
    step = strike_step(float(forward))
    centre = (forward / step).to_integral_value() * step
    return [
        centre + n * step for n in range(-LADDER_STEPS, LADDER_STEPS + 1) if centre + n * step > 0
    ]


def option_symbol(underlying: str, expiry: datetime, strike: Decimal, option_type: str) -> str:
    """Deribit's naming with the minute of expiry (the demo lists several a day):
    BTC-261204T1830-96000-C."""
    return f"{underlying}-{expiry:%y%m%dT%H%M}-{strike.normalize():f}-{option_type[0].upper()}"


def _terms_uncovered(live: list[datetime], now: datetime) -> list[timedelta]:
    """The terms no live expiry covers: shortest first, each takes the nearest unused expiry
    within it."""
    unused = sorted(e for e in live if e > now)
    missing = []
    for hours in sorted(settings.OPTION_TERMS_HOURS):
        term = real_duration(timedelta(hours=hours))
        within = [e for e in unused if e <= now + term]
        if within:
            unused.remove(within[0])
        else:
            missing.append(term)
    return missing


def _forward(underlying: Asset) -> Decimal | None:
    return (
        MarkPrice.objects.filter(
            instrument__underlying=underlying,
            instrument__kind=Instrument.Kind.PERPETUAL,
            instrument__is_active=True,
            uncertain_reason="",
        )
        .values_list("mark_price", flat=True)
        .first()
    )


def _series_list(underlying: Asset, expiry: datetime, forward: Decimal, now: datetime) -> list:
    """The series of the ladder around `forward` at this expiry not listed yet, listed and
    marked."""
    listed = []
    known = set(
        Instrument.objects.filter(underlying=underlying, expiry=expiry).values_list(
            "symbol", flat=True
        )
    )
    for strike in strike_ladder(forward):
        for option_type in Instrument.OptionType.values:
            symbol = option_symbol(underlying.symbol, expiry, strike, option_type)
            if symbol in known:
                continue
            instrument, created = Instrument.objects.get_or_create(
                symbol=symbol,
                defaults={
                    "kind": Instrument.Kind.OPTION,
                    "underlying": underlying,
                    "expiry": expiry,
                    "strike": strike,
                    "option_type": option_type,
                },
            )
            if created:
                listed.append(instrument)
    MarkPrice.objects.bulk_create(
        option_marks(
            listed,
            forwards={underlying.pk: Forward(forward)},
            surface=surface_inputs(now),
            rules=vol_rules(parameters_in_force(now)),
            previous={},
            now=now,
        ).marks
    )
    return listed


def options_listing_ensure(*, now: datetime) -> list[str]:
    """List what the terms need on each underlying with a perpetual's mark; the symbols
    listed (none when listing is off)."""
    if not settings.OPTIONS_LISTING_ENABLED:
        return []
    listed: list[str] = []
    for underlying in Asset.objects.filter(symbol__in=OPTION_UNDERLYINGS).order_by("symbol"):
        forward = _forward(underlying)
        if forward is None:
            continue
        live = list(
            Instrument.objects.filter(
                kind=Instrument.Kind.OPTION, underlying=underlying, is_active=True
            )
            .values_list("expiry", flat=True)
            .distinct()
        )
        new = [
            (now + term).replace(second=0, microsecond=0) + timedelta(minutes=1)
            for term in _terms_uncovered(live, now)
        ]
        # The new terms, then every live expiry's ladder around today's forward.
        for expiry in new + sorted(e for e in set(live) if e > now):
            with transaction.atomic():
                series = _series_list(underlying, expiry, forward, now)
            listed += [s.symbol for s in series]
            if series:
                logger.info("%d %s options listed, expiring at %s", len(series), underlying, expiry)
    return listed

"""Option marks: Black-76 on the forward with the volatility surface's vol.

An option is marked on its underlying's forward, the mark of the perpetual on that underlying
(the index where there is none), at the surface's implied vol for its strike and time to
expiry (`margin.market.surface`, in the demo market's regime). The premium is the engine's
(`margin.engine.options_vector.black76_value`, the float64 twin of the Decimal reference,
equal to it within 1e-9) to the cent's ten-thousandth. When the forward holds (its index is
uncertain) the option's mark holds with it, uncertain for the same reason: the price guard's
rules reach the options through their forward. The vol guard (`margin.engine.guard.guarded_vol`)
applies them to the vols too: a series' vol moves at most `vol_guard_max_move` of its last per
tick (each capped vol logged for the desk), and when the surface's inputs are older than the
price guard's age limit the mark holds, uncertain with why, as on an uncertain forward.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from margin.engine.guard import VolRules, guarded_vol
from margin.engine.options_vector import black76_value
from margin.engine.prices import CAPPED
from margin.market.clock import market_days_between
from margin.market.surface import NO_JUMP, implied_vol
from margin.models import GuardRejection, Instrument, MarkPrice, ParameterVersion, QuoteKind
from margin.selectors.options import SurfaceInputs

PREMIUM_QUANTUM = Decimal("0.000001")
VOL_QUANTUM = Decimal("0.000001")
# An option past its expiry awaiting settlement is valued one market minute from it: Black-76
# needs T > 0, and one minute is its intrinsic value to the cent.
LEAST_EXPIRY_DAYS = 1 / 1440


# The vol guard's log names the surface as the source of the vols it capped.
SURFACE_SOURCE = "surface"


@dataclass(frozen=True)
class Forward:
    price: Decimal
    uncertain_reason: str = ""


@dataclass(frozen=True)
class OptionMarks:
    marks: list[MarkPrice]
    capped: list[GuardRejection]  # the vols the guard counted at its move band, for the log


def vol_rules(params: ParameterVersion) -> VolRules:
    """The vol guard's rules of a parameter version: its move band, the price guard's age."""
    return VolRules(max_age_s=params.price_guard_max_age_s, max_move=params.vol_guard_max_move)


def expiry_days(expiry: datetime, now: datetime) -> float:
    """Market days to `expiry` from `now`, at least LEAST_EXPIRY_DAYS."""
    return max(market_days_between(now, expiry), LEAST_EXPIRY_DAYS)


def forwards_of(linear_marks: list[MarkPrice], indexes: dict[int, Decimal]) -> dict[int, Forward]:
    """Per underlying asset id: its perpetual's mark (with its uncertainty), else its index."""
    forwards = {asset_id: Forward(price) for asset_id, price in indexes.items()}
    for mark in linear_marks:
        if mark.instrument.kind == Instrument.Kind.PERPETUAL:
            forwards[mark.instrument.underlying_id] = Forward(
                mark.mark_price, mark.uncertain_reason
            )
    return forwards


def _held(previous: MarkPrice | None, option: Instrument, why: str) -> list[MarkPrice]:
    """The option's last mark held, uncertain for `why` (none when it has none)."""
    if previous is None:
        return []
    previous.instrument = option
    previous.uncertain_reason = why[:200]
    return [previous]


def _capped(
    option: Instrument,
    surface_vol: Decimal,
    last_vol: Decimal,
    counted: Decimal,
    detail: str,
    now: datetime,
) -> GuardRejection:
    return GuardRejection(
        at=now,
        source=SURFACE_SOURCE,
        kind=QuoteKind.VOL,
        symbol=option.symbol,
        price=surface_vol,
        reference_price=last_vol,
        counted_price=counted,
        reason=CAPPED,
        detail=detail[:200],
    )


def option_marks(
    options: list[Instrument],
    *,
    forwards: dict[int, Forward],
    surface: SurfaceInputs,
    rules: VolRules,
    previous: dict[int, MarkPrice],
    now: datetime,
) -> OptionMarks:
    """The marks of `options` (instruments with their underlying loaded) at `now`, their vols
    through the vol guard against the `previous` marks."""
    priced = [o for o in options if o.underlying_id in forwards]
    marks: list[MarkPrice] = []
    capped: list[GuardRejection] = []
    fresh: list[tuple[Instrument, Decimal, float, Decimal]] = []
    for option in priced:
        forward = forwards[option.underlying_id]
        last = previous.get(option.pk)
        if forward.uncertain_reason:
            marks += _held(last, option, forward.uncertain_reason)
            continue
        days = expiry_days(option.expiry, now)
        # Priced at the vol it publishes: the mark follows from the published forward, vol
        # and time to expiry, as the explain of a chain row recomputes it.
        surface_vol = implied_vol(
            option.underlying.symbol,
            surface.regime_of.get(option.underlying_id, "calm"),
            forward=float(forward.price),
            strike=float(option.strike),
            expiry_days=days,
            jump=surface.jump_of.get(option.underlying_id, NO_JUMP),
        )
        vol = Decimal(f"{surface_vol:.10f}").quantize(VOL_QUANTUM)
        last_vol = last.implied_vol if last is not None else None
        guarded = guarded_vol(
            vol,
            surface_age_s=surface.age_s_of.get(option.underlying_id, 0.0),
            last_vol=last_vol,
            rules=rules,
        )
        if guarded.vol is None:
            why = f"{option.underlying.symbol} {guarded.detail}"
            marks += _held(last, option, why)
            continue
        counted = guarded.vol.quantize(VOL_QUANTUM)
        if guarded.reason == CAPPED:
            capped.append(_capped(option, vol, last_vol, counted, guarded.detail, now))
        fresh.append((option, forward.price, days, counted))
    if not fresh:
        return OptionMarks(marks, capped)
    values = black76_value(
        np.array([o.option_type == Instrument.OptionType.CALL for o, _, _, _ in fresh]),
        np.array([float(f) for _, f, _, _ in fresh]),
        np.array([float(o.strike) for o, _, _, _ in fresh]),
        np.array([float(v) for _, _, _, v in fresh]),
        np.array([d for _, _, d, _ in fresh]),
    )
    for (option, forward, _, vol), value in zip(fresh, values.tolist(), strict=True):
        premium = Decimal(f"{max(value, 0.0):.10f}").quantize(
            PREMIUM_QUANTUM, rounding=ROUND_HALF_EVEN
        )
        marks.append(
            MarkPrice(
                instrument=option,
                mark_price=premium,
                index_price=forward,
                implied_vol=vol,
                updated_at=now,
                binding=MarkPrice.Binding.BLACK76,
                uncertain_reason="",
            )
        )
    return OptionMarks(marks, capped)

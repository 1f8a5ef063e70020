"""Option marks: Black-76 on the forward with the volatility surface's vol.

An option is marked on its underlying's forward, the mark of the perpetual on that underlying
(the index where there is none), at the surface's implied vol for its strike and time to
expiry (`margin.market.surface`, in the demo market's regime). The premium is the engine's
(`margin.engine.options_vector.black76_value`, the float64 twin of the Decimal reference,
equal to it within 1e-9) to the cent's ten-thousandth. When the forward holds (its index is
uncertain) the option's mark holds with it, uncertain for the same reason: the price guard's
rules reach the vols through their forward.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from margin.engine.options_vector import black76_value
from margin.market.clock import market_days_between
from margin.market.surface import NO_JUMP, Jump, implied_vol
from margin.models import Instrument, MarkPrice

PREMIUM_QUANTUM = Decimal("0.000001")
VOL_QUANTUM = Decimal("0.000001")
# An option past its expiry awaiting settlement is valued one market minute from it: Black-76
# needs T > 0, and one minute is its intrinsic value to the cent.
LEAST_EXPIRY_DAYS = 1 / 1440


@dataclass(frozen=True)
class Forward:
    price: Decimal
    uncertain_reason: str = ""


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


def option_marks(
    options: list[Instrument],
    *,
    forwards: dict[int, Forward],
    regime_of: dict[int, str],
    jump_of: dict[int, Jump],
    previous: dict[int, MarkPrice],
    now: datetime,
) -> list[MarkPrice]:
    """The marks of `options` (instruments with their underlying loaded) at `now`."""
    priced = [o for o in options if o.underlying_id in forwards]
    marks: list[MarkPrice] = []
    fresh: list[tuple[Instrument, Decimal, float, Decimal]] = []
    for option in priced:
        forward = forwards[option.underlying_id]
        if forward.uncertain_reason:
            held = previous.get(option.pk)
            if held is not None:
                held.instrument = option
                held.uncertain_reason = forward.uncertain_reason[:200]
                marks.append(held)
            continue
        days = expiry_days(option.expiry, now)
        # Priced at the vol it publishes: the mark follows from the published forward, vol
        # and time to expiry, as the explain of a chain row recomputes it.
        surface_vol = implied_vol(
            option.underlying.symbol,
            regime_of.get(option.underlying_id, "calm"),
            forward=float(forward.price),
            strike=float(option.strike),
            expiry_days=days,
            jump=jump_of.get(option.underlying_id, NO_JUMP),
        )
        vol = Decimal(f"{surface_vol:.10f}").quantize(VOL_QUANTUM)
        fresh.append((option, forward.price, days, vol))
    if not fresh:
        return marks
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
    return marks

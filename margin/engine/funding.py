"""Perpetual funding and dated-future settlement: the formulas, with no database.

Binance USD-M ("Introduction to Binance Futures Funding Rates",
https://www.binance.com/en/support/faq/360033525031):

- the premium index is sampled through the funding interval and averaged with time weights,
  the newest sample weighing most: P = (1·P1 + 2·P2 + … + n·Pn) / (1 + 2 + … + n);
- funding rate F = P + clamp(I − P, −0.05%, +0.05%), I the interest rate of the interval
  (0.01% per 8 hours, i.e. 0.03% a day, scaled to the interval: F / (8 / N) in Binance's
  words for contracts that settle N-hourly);
- the rate is then capped per contract: clamp(F, −cap, +cap), a published parameter;
- funding fee = position notional at the mark × F; a positive rate makes longs pay shorts.

Dated futures settle at the time-weighted average of the index over the last 30 minutes
before delivery (Binance "Delivery Futures: settlement price"). Each rule has a readable
Decimal face for one value and a NumPy face for the whole book; the tests hold them equal.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import numpy as np

from margin.engine.precision import exact

EIGHT_HOURS_S = 8 * 3600
# Binance's default interest component: 0.01% per 8-hour interval.
DEFAULT_INTEREST_PER_8H = Decimal("0.0001")
# The ±0.05% dampener around the interest rate.
DAMPENER = Decimal("0.0005")
# Funding fees are settled to 8 decimals of the settlement asset (as Binance shows them), a tie
# rounded away from zero so that a long and a short of the same size pay exactly each other.
PAYMENT_QUANTUM = Decimal("1e-8")
SETTLEMENT_WINDOW = timedelta(minutes=30)
# A settled rate is kept to 12 decimals (0.0000001%), as FundingRate.rate stores it.
RATE_QUANTUM = Decimal("1e-12")


def clamp(value, low, high):
    return max(low, min(high, value))


@exact
def premium_index(*, mark_price: Decimal, index_price: Decimal) -> Decimal:
    """One premium sample: (perpetual price − index) / index. Binance samples impact bid/ask
    prices from its order book; a book with no order book samples the mark against the index."""
    return (mark_price - index_price) / index_price


@exact
def average_premium(samples: Sequence[Decimal]) -> Decimal:
    """Binance's time-weighted average: sample k (oldest first) weighs k."""
    if not samples:
        return Decimal(0)
    weighted = sum((k * p for k, p in enumerate(samples, start=1)), Decimal(0))
    n = len(samples)
    return weighted / Decimal(n * (n + 1) // 2)


@exact
def interval_interest(*, interest_per_8h: Decimal, interval_s: int) -> Decimal:
    """The interest component of one funding interval (Binance: F / (8 / N))."""
    return interest_per_8h * interval_s / EIGHT_HOURS_S


@exact
def funding_rate(*, average_premium: Decimal, interest: Decimal, cap: Decimal) -> Decimal:
    """F = P + clamp(I − P, −0.05%, +0.05%), then capped to ±cap (Binance)."""
    uncapped = average_premium + clamp(interest - average_premium, -DAMPENER, DAMPENER)
    return clamp(uncapped, -cap, cap)


@exact
def funding_payment(*, quantity: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """What a position of signed `quantity` receives (negative: pays) at one funding time:
    −side × |quantity| × mark × rate, to 8 decimals. Longs pay a positive rate."""
    return (-(quantity * mark_price * rate)).quantize(PAYMENT_QUANTUM, rounding=ROUND_HALF_UP)


@exact
def settlement_price(
    samples: Sequence[tuple[datetime, Decimal]],
    *,
    until: datetime,
    window: timedelta = SETTLEMENT_WINDOW,
) -> Decimal:
    """Time-weighted average of the index over [until − window, until] (30 minutes): each price
    holds from its time to the next sample's (the last to `until`); the last sample before the
    window counts from the window's start. No sample at all: no settlement price."""
    start = until - window
    ordered = sorted(s for s in samples if s[0] <= until)
    if not ordered:
        raise ValueError("no index sample to settle on")
    before = [s for s in ordered if s[0] <= start]
    held = ([(start, before[-1][1])] if before else []) + [s for s in ordered if s[0] > start]
    ends = [at for at, _ in held[1:]] + [until]
    weights = [
        Decimal(str((end - at).total_seconds())) for (at, _), end in zip(held, ends, strict=True)
    ]
    total = sum(weights, Decimal(0))
    if total == 0:
        return held[-1][1]
    return sum((w * price for w, (_, price) in zip(weights, held, strict=True)), Decimal(0)) / total


def next_funding_time(after: datetime, *, interval_s: float, anchor: datetime) -> datetime:
    """The first funding time strictly after `after` on the grid anchor + k × interval (Binance:
    00:00, 08:00, 16:00 UTC for 8 h)."""
    elapsed = (after - anchor).total_seconds()
    k = int(elapsed // interval_s) + 1
    return anchor + timedelta(seconds=k * interval_s)


def last_funding_time(now: datetime, *, interval_s: float, anchor: datetime) -> datetime:
    """The latest funding time at or before `now` on the grid anchor + k × interval."""
    return next_funding_time(now, interval_s=interval_s, anchor=anchor) - timedelta(
        seconds=interval_s
    )


@dataclass(frozen=True)
class RateWorking:
    """A funding rate and how it was reached (for the ledger's record and for explain)."""

    average_premium: Decimal
    interest: Decimal
    cap: Decimal
    rate: Decimal
    samples: int


def interval_rate_working(
    samples: Sequence[Decimal], *, interval_s: int, interest_per_8h: Decimal, cap: Decimal
) -> RateWorking:
    """The rate of one funding interval from its premium samples, oldest first (Binance),
    rounded to RATE_QUANTUM as it is settled."""
    interest = interval_interest(interest_per_8h=interest_per_8h, interval_s=interval_s)
    premium = average_premium(samples)
    rate = funding_rate(average_premium=premium, interest=interest, cap=cap)
    return RateWorking(
        average_premium=premium.quantize(RATE_QUANTUM, rounding=ROUND_HALF_EVEN),
        interest=interest,
        cap=cap,
        rate=rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_EVEN),
        samples=len(samples),
    )


# The vectorized faces (float64) of the same rules, for the whole book at once.


def average_premium_vector(samples: np.ndarray) -> np.ndarray:
    """Rows of premium samples (oldest first; NaN where a row is shorter, padded on the left)
    to each row's time-weighted average."""
    valid = ~np.isnan(samples)
    ranks = np.cumsum(valid, axis=1)
    weights = np.where(valid, ranks, 0)
    total = weights.sum(axis=1)
    return np.where(total > 0, np.nansum(samples * weights, axis=1) / np.maximum(total, 1), 0.0)


def funding_rate_vector(
    average_premium: np.ndarray, interest: np.ndarray, cap: np.ndarray
) -> np.ndarray:
    damp = float(DAMPENER)
    uncapped = average_premium + np.clip(interest - average_premium, -damp, damp)
    return np.clip(uncapped, -cap, cap)


def funding_payment_vector(
    quantity: np.ndarray, mark_price: np.ndarray, rate: np.ndarray
) -> np.ndarray:
    return -(quantity * mark_price * rate)

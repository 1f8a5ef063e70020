"""The demo market's implied volatility surface: a parametric smile with a term structure that
follows the market's volatility regime.

For an underlying with calm annual volatility σc (`ANNUAL_VOLATILITY`) and a regime volatility
σr (σc, or σc × `STRESSED_MULTIPLIER` in the stressed regime):
- at the money, σatm(T) = σ∞ + (σr − σ∞)·e^(−T/τ) with σ∞ = σc × `LONG_TERM_PREMIUM` and
  τ = `TERM_DAYS`: short expiries carry the regime's volatility, long ones revert to a little
  above the calm level, so the term structure slopes up when calm and inverts when stressed;
- across strikes, σ(k, T) = σatm(T) + skew·k + curvature·k² on the log-moneyness
  k = ln(K / F), with a put skew (`SKEW`, steeper by the regime multiplier when stressed, as
  crypto puts bid up in a sell-off) and a smile (`CURVATURE`); floored at `VOL_FLOOR`.
"""

import math

from margin.market.demo import ANNUAL_VOLATILITY, DEFAULT_VOLATILITY, STRESSED, STRESSED_MULTIPLIER

LONG_TERM_PREMIUM = 1.05
TERM_DAYS = 30.0
SKEW = -0.10
CURVATURE = 0.50
VOL_FLOOR = 0.05


def regime_multiplier(regime: str) -> float:
    return STRESSED_MULTIPLIER if regime == STRESSED else 1.0


def atm_vol(underlying: str, regime: str, expiry_days: float) -> float:
    """σatm(T): the regime's volatility at the short end, σc × LONG_TERM_PREMIUM at the long."""
    calm = ANNUAL_VOLATILITY.get(underlying.upper(), DEFAULT_VOLATILITY)
    long_run = calm * LONG_TERM_PREMIUM
    short_end = calm * regime_multiplier(regime)
    return long_run + (short_end - long_run) * math.exp(-max(expiry_days, 0.0) / TERM_DAYS)


def implied_vol(
    underlying: str, regime: str, *, forward: float, strike: float, expiry_days: float
) -> float:
    """σ(k, T) of the surface for a strike on the forward `forward`."""
    k = math.log(strike / forward)
    skew = SKEW * regime_multiplier(regime)
    vol = atm_vol(underlying, regime, expiry_days) + skew * k + CURVATURE * k * k
    return max(vol, VOL_FLOOR)


def surface_parameters(regime: str) -> dict[str, float]:
    """What the disclosure page publishes of the surface in a regime."""
    return {
        "long_term_premium": LONG_TERM_PREMIUM,
        "term_days": TERM_DAYS,
        "skew": SKEW * regime_multiplier(regime),
        "curvature": CURVATURE,
        "vol_floor": VOL_FLOOR,
        "regime_multiplier": regime_multiplier(regime),
    }


# The demo market's option quotes: bid and ask are Black-76 at the surface's vol less and plus
# this many vol points, a market maker's spread in vol (orders fill at the mark, like the
# futures; the spread shows what a venue's book would charge).
QUOTE_HALF_SPREAD_VOL = 0.01

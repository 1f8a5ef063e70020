"""The demo market's implied volatility surface: a parametric smile with a term structure that
follows the market's volatility regime.

For an underlying with calm annual volatility σc (`ANNUAL_VOLATILITY`) and a regime volatility
σr (σc, or σc × `STRESSED_MULTIPLIER` in the stressed regime):
- at the money, σatm(T) = σ∞ + (σr − σ∞)·e^(−T/τ) with σ∞ = σc × `LONG_TERM_PREMIUM` and
  τ = `TERM_DAYS`: short expiries carry the regime's volatility, long ones revert to a little
  above the calm level, so the term structure slopes up when calm and inverts when stressed;
- across strikes, σ(k, T) = σatm(T) + skew·k + curvature·k² on the log-moneyness
  k = ln(K / F), with a put skew (`SKEW`, steeper by the regime multiplier when stressed, as
  crypto puts bid up in a sell-off) and a smile (`CURVATURE`); floored at `VOL_FLOOR`;
- after a jump (a gap of log return j, `age` hours ago in market time) the short end is lifted
  by `JUMP_VOL_PER_MOVE`·|j|·d·e^(−T/τ) and the skew steepened by `JUMP_SKEW_PER_MOVE`·|j|·d,
  with d = 2^(−age / `JUMP_HALF_LIFE_HOURS`): a gap raises the vol it is quoted at mostly for
  short expiries (realized vol is highest right after a gap and the market expects it to
  calm), and puts bid up as traders buy protection, both fading as the market settles.
"""

import math
from dataclasses import dataclass

from margin.market.demo import ANNUAL_VOLATILITY, DEFAULT_VOLATILITY, STRESSED, STRESSED_MULTIPLIER

LONG_TERM_PREMIUM = 1.05
TERM_DAYS = 30.0
SKEW = -0.10
CURVATURE = 0.50
VOL_FLOOR = 0.05
# The jump response: a modelling choice, not a fit. Realized and implied vol rise after a gap
# and fade as the market settles (Deribit's DVOL, the 30-day implied vol index, spikes on
# large moves: https://www.deribit.com/statistics/BTC/volatility-index). A gap of |j| lifts
# the short end by 2·|j| (a 5 % gap: +10 vol points) and steepens the put skew by 1·|j|
# (a 5 % gap: −0.05 on top of −0.10, the 10 %-OTM put half a vol point dearer). A half-life
# of 12 market hours leaves a jump's effect below 5 % after 2.5 market days, before the next
# jump at the model's own rate (one a week, `margin.market.demo.JUMP_RATE`); the surface
# follows only the last jump.
JUMP_VOL_PER_MOVE = 2.0
JUMP_SKEW_PER_MOVE = 1.0
JUMP_HALF_LIFE_HOURS = 12.0


@dataclass(frozen=True)
class Jump:
    """The market's last jump: its log return and how many market hours ago it happened."""

    log_return: float
    age_hours: float

    def weight(self) -> float:
        """|j|·2^(−age/half-life): the size of the jump still felt by the surface."""
        return abs(self.log_return) * 2.0 ** (-max(self.age_hours, 0.0) / JUMP_HALF_LIFE_HOURS)


NO_JUMP = Jump(log_return=0.0, age_hours=0.0)


def regime_multiplier(regime: str) -> float:
    return STRESSED_MULTIPLIER if regime == STRESSED else 1.0


def jump_vol_bump(jump: Jump, expiry_days: float) -> float:
    """What a jump adds to σatm(T): JUMP_VOL_PER_MOVE·|j|·d, fading with the term like the
    regime's short end."""
    return JUMP_VOL_PER_MOVE * jump.weight() * math.exp(-max(expiry_days, 0.0) / TERM_DAYS)


def skew(regime: str, jump: Jump = NO_JUMP) -> float:
    """The put skew: steeper by the regime's multiplier and by a recent jump."""
    return SKEW * regime_multiplier(regime) - JUMP_SKEW_PER_MOVE * jump.weight()


def atm_vol(underlying: str, regime: str, expiry_days: float, jump: Jump = NO_JUMP) -> float:
    """σatm(T): the regime's volatility at the short end (lifted by a recent jump),
    σc × LONG_TERM_PREMIUM at the long."""
    calm = ANNUAL_VOLATILITY.get(underlying.upper(), DEFAULT_VOLATILITY)
    long_run = calm * LONG_TERM_PREMIUM
    short_end = calm * regime_multiplier(regime)
    reverting = long_run + (short_end - long_run) * math.exp(-max(expiry_days, 0.0) / TERM_DAYS)
    return reverting + jump_vol_bump(jump, expiry_days)


def implied_vol(
    underlying: str,
    regime: str,
    *,
    forward: float,
    strike: float,
    expiry_days: float,
    jump: Jump = NO_JUMP,
) -> float:
    """σ(k, T) of the surface for a strike on the forward `forward`."""
    k = math.log(strike / forward)
    smile = skew(regime, jump) * k + CURVATURE * k * k
    return max(atm_vol(underlying, regime, expiry_days, jump) + smile, VOL_FLOOR)


def surface_parameters(regime: str, jump: Jump = NO_JUMP) -> dict[str, float]:
    """What the disclosure page publishes of the surface in a regime after `jump`."""
    return {
        "long_term_premium": LONG_TERM_PREMIUM,
        "term_days": TERM_DAYS,
        "skew": skew(regime, jump),
        "curvature": CURVATURE,
        "vol_floor": VOL_FLOOR,
        "regime_multiplier": regime_multiplier(regime),
        "jump_log_return": jump.log_return,
        "jump_age_hours": jump.age_hours,
        "jump_vol_per_move": JUMP_VOL_PER_MOVE,
        "jump_skew_per_move": JUMP_SKEW_PER_MOVE,
        "jump_half_life_hours": JUMP_HALF_LIFE_HOURS,
    }


# The demo market's option quotes: bid and ask are Black-76 at the surface's vol less and plus
# this many vol points, a market maker's spread in vol (orders fill at the mark, like the
# futures; the spread shows what a venue's book would charge).
QUOTE_HALF_SPREAD_VOL = 0.01

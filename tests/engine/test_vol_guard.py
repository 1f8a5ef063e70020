"""The vol guard (`margin.engine.guard.guarded_vol`): the price guard's age and move rules on an
option series' implied vol. The surface is one source, so a move beyond the band is capped to
it (as Binance caps a source to the median × (1 ± 5%)), and a surface older than the age limit
gives no vol (the mark holds, as on a stale index)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from margin.engine.guard import VolRules, guarded_vol
from margin.engine.prices import CAPPED, STALE

RULES = VolRules(max_age_s=30, max_move=Decimal("0.10"))
VOLS = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("5"), places=6)


def test_a_vol_within_the_band_counts_as_the_surface_gives_it():
    guarded = guarded_vol(Decimal("0.58"), surface_age_s=1.0, last_vol=Decimal("0.55"), rules=RULES)
    assert (guarded.vol, guarded.reason, guarded.detail) == (Decimal("0.58"), "", "")


def test_a_regime_switch_is_capped_to_the_band_and_says_so():
    # given: a short-dated series at 55 %; the stressed regime lifts the surface 2.5×
    guarded = guarded_vol(
        Decimal("1.375"), surface_age_s=0.0, last_vol=Decimal("0.55"), rules=RULES
    )
    # then: it counts at 55 % × 1.1 = 60.5 %
    assert guarded.vol == Decimal("0.605") and guarded.reason == CAPPED
    assert guarded.detail == (
        "surface vol 137.5% against 55% a tick before, beyond ±10%: counted at 60.5%"
    )
    # and down as well: 55 % → 20 % counts at 49.5 %
    down = guarded_vol(Decimal("0.20"), surface_age_s=0.0, last_vol=Decimal("0.55"), rules=RULES)
    assert down.vol == Decimal("0.495") and down.reason == CAPPED


def test_a_switch_is_walked_in_over_ticks_ln_2_5_over_ln_1_1_about_ten():
    vol, ticks = Decimal("0.55"), 0
    while vol != Decimal("1.375"):
        vol = guarded_vol(Decimal("1.375"), surface_age_s=0.0, last_vol=vol, rules=RULES).vol
        ticks += 1
    assert ticks == 10


def test_a_new_series_takes_the_surface_vol():
    guarded = guarded_vol(Decimal("1.375"), surface_age_s=0.0, last_vol=None, rules=RULES)
    assert guarded.vol == Decimal("1.375") and guarded.reason == ""


def test_a_stale_surface_gives_no_vol_with_the_reason():
    guarded = guarded_vol(
        Decimal("0.55"), surface_age_s=45.0, last_vol=Decimal("0.55"), rules=RULES
    )
    assert guarded.vol is None and guarded.reason == STALE
    assert guarded.detail == "vol surface stale: no fresh vol for 45 s (limit 30 s)"
    # at the limit it is still fresh, as a price quote is (`index_price`: age ≤ max age)
    assert guarded_vol(Decimal("0.55"), surface_age_s=30.0, last_vol=None, rules=RULES).vol


@given(surface=VOLS, last=VOLS, band=st.decimals(min_value=Decimal("0.01"), max_value=1, places=2))
def test_the_counted_vol_is_the_surface_clamped_to_the_band(surface, last, band):
    rules = VolRules(max_age_s=30, max_move=band)
    guarded = guarded_vol(surface, surface_age_s=0.0, last_vol=last, rules=rules)
    assert last * (1 - band) <= guarded.vol <= last * (1 + band)
    assert (guarded.vol == surface) == (guarded.reason == "")
    # the surface's vol counts whenever it lies in the band
    if abs(surface / last - 1) <= band:
        assert guarded.vol == surface

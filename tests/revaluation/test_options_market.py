"""Options listed on a strike ladder per term, marked by Black-76 on the perpetual's mark
with the surface's vol, rolled as they expire (PostgreSQL)."""

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from margin.engine.options import black76_value
from margin.market.surface import (
    JUMP_HALF_LIFE_HOURS,
    NO_JUMP,
    Jump,
    atm_vol,
    implied_vol,
    jump_vol_bump,
    skew,
)
from margin.models import Instrument, MarkPrice, MarkPriceHistory, Position, SimulatedAsset
from margin.services.options_listing import options_listing_ensure, strike_ladder
from margin.services.prices import demo_market_step, prices_refresh
from tests.options_support import series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def test_each_term_lists_calls_and_puts_on_a_ladder_around_the_forward(options_market):
    btc = Instrument.objects.filter(kind="option", underlying__symbol="BTC")
    expiries = sorted(set(btc.values_list("expiry", flat=True)))
    # three terms (12, 48, 168 market hours = 12, 48, 168 real minutes at speed 60)
    # each on the whole minute after the term
    seconds = [(e - options_market).total_seconds() for e in expiries]
    assert [math.floor(s / 60) for s in seconds] == [12, 48, 168]
    assert all(e.second == 0 for e in expiries)
    strikes = sorted({s for s in btc.values_list("strike", flat=True)})
    # steps of 2.5 % of 95,000 to one figure: 2,000, three either side of 96,000 (95,000/2,000
    # = 47.5 rounds to 48)
    assert strikes == [Decimal(k) for k in (90000, 92000, 94000, 96000, 98000, 100000, 102000)]
    assert btc.count() == 3 * 7 * 2
    assert btc.filter(symbol__endswith="-96000-C").count() == 3
    # ETH at 3,400: 85 to one figure is 80 (half to even); 3,400 / 80 = 42.5 → 42
    assert strike_ladder(Decimal("3400")) == [Decimal(3120 + 80 * n) for n in range(7)]


def test_an_option_is_marked_by_black76_on_the_perpetual_mark_at_the_surface_vol(options_market):
    option = series("call", 100000, 1)
    later = options_market + timedelta(seconds=5)
    prices_refresh(now=later)
    mark = MarkPrice.objects.get(instrument=option)
    forward = MarkPrice.objects.get(instrument__symbol="BTCUSDT").mark_price
    assert mark.index_price == forward and mark.binding == "black76"
    days = (option.expiry - later).total_seconds() * 60 / 86400
    vol = implied_vol("BTC", "calm", forward=float(forward), strike=100000, expiry_days=days)
    assert float(mark.implied_vol) == pytest.approx(vol, abs=1e-6)
    expected = black76_value("call", forward, Decimal(100000), Decimal(str(vol)), Decimal(days))
    assert mark.mark_price == pytest.approx(expected, abs=Decimal("0.001"))
    # and the vol is kept with the price history
    assert MarkPriceHistory.objects.filter(instrument=option, at=later).get().implied_vol == (
        mark.implied_vol
    )


def test_the_surface_has_a_put_skew_and_its_short_end_follows_the_regime():
    forward = 95000.0
    low, atm, high = (
        implied_vol("BTC", "calm", forward=forward, strike=k, expiry_days=7.0)
        for k in (85000.0, forward, 105000.0)
    )
    assert low > atm and low > high  # puts below the money bid up
    assert atm == pytest.approx(atm_vol("BTC", "calm", 7.0))
    # calm: upward term structure; stressed: the short end carries 2.5× the vol, inverted
    assert atm_vol("BTC", "calm", 1.0) < atm_vol("BTC", "calm", 90.0)
    assert atm_vol("BTC", "stressed", 1.0) > atm_vol("BTC", "stressed", 90.0)
    assert atm_vol("BTC", "stressed", 0.0) == pytest.approx(0.55 * 2.5)
    # σ = atm + skew·k + curvature·k², k = ln(K/F)
    k = math.log(105000 / forward)
    assert high == pytest.approx(atm_vol("BTC", "calm", 7.0) - 0.10 * k + 0.5 * k * k)


def test_a_stressed_regime_lifts_option_marks(options_market):
    option = series("put", 96000, 0)
    later = options_market + timedelta(seconds=2)
    prices_refresh(now=later)
    calm = MarkPrice.objects.get(instrument=option)
    SimulatedAsset.objects.create(
        asset=option.underlying, price=95000, regime="stressed", stepped_at=later
    )
    prices_refresh(now=later + timedelta(seconds=1))
    stressed = MarkPrice.objects.get(instrument=option)
    assert stressed.implied_vol > 2 * calm.implied_vol
    assert stressed.mark_price > calm.mark_price


def test_a_jump_lifts_the_short_end_and_steepens_the_skew_then_decays():
    # a 5 % gap down, just now: the demo's jumps are −1 % ± 3 % (margin.market.demo)
    fresh = Jump(log_return=-0.05, age_hours=0.0)
    assert jump_vol_bump(fresh, 0.5) > 0
    assert jump_vol_bump(fresh, 0.5) > jump_vol_bump(fresh, 90.0)
    assert atm_vol("BTC", "calm", 0.5, fresh) > atm_vol("BTC", "calm", 0.5)
    assert skew("calm", fresh) < skew("calm", NO_JUMP) < 0
    settled = Jump(log_return=-0.05, age_hours=5 * JUMP_HALF_LIFE_HOURS)
    assert jump_vol_bump(settled, 0.5) < 0.05 * jump_vol_bump(fresh, 0.5)
    assert skew("calm", settled) - skew("calm", NO_JUMP) > 0.05 * (
        skew("calm", fresh) - skew("calm", NO_JUMP)
    )


def test_a_recorded_jump_raises_the_vol_of_a_short_atm_option_mark(options_market, settings):
    option = series("call", 96000, 0)
    later = options_market + timedelta(seconds=2)
    prices_refresh(now=later)
    before = MarkPrice.objects.get(instrument=option)
    # the market tick records a jump (certain at this rate) on the simulated asset: the first
    # step starts the simulation, the second moves it by a second
    settings.DEMO_MARKET_JUMPS_PER_HOUR = 1e9
    rng = np.random.default_rng(7)
    demo_market_step(now=later, rng=rng)
    jumped_at = later + timedelta(seconds=1)
    demo_market_step(now=jumped_at, rng=rng)
    simulated = SimulatedAsset.objects.get(asset=option.underlying)
    assert simulated.last_jump_at == jumped_at and simulated.last_jump_log_return != 0
    # a 5 % gap down, whatever the draw, so that the lift is known (2 × 5 % ≈ 10 vol points)
    SimulatedAsset.objects.update(last_jump_log_return=Decimal("-0.05"))
    prices_refresh(now=jumped_at)
    after = MarkPrice.objects.get(instrument=option)
    assert after.implied_vol > before.implied_vol + Decimal("0.05")


def test_an_expired_term_is_listed_again(options_market):
    first = Instrument.objects.filter(kind="option", underlying__symbol="ETH").order_by("expiry")[0]
    after = first.expiry + timedelta(seconds=1)
    Instrument.objects.filter(expiry=first.expiry).update(is_active=False)
    listed = options_listing_ensure(now=after)
    assert len(listed) == 2 * 7 * 2  # BTC and ETH: the 12-hour term again
    newest = Instrument.objects.filter(kind="option", is_active=True).order_by("-pk")[0]
    assert 12 * 60 <= (newest.expiry - after).total_seconds() <= 13 * 60
    assert options_listing_ensure(now=after) == []


def test_the_disclosure_page_publishes_the_series_and_the_surface(options_market, client):
    page = client.get("/disclosure/").content.decode()
    option = Instrument.objects.filter(kind="option").order_by("pk").first()
    assert f'data-symbol="{option.symbol}"' in page
    assert 'data-underlying="BTC"' in page and 'data-underlying="ETH"' in page
    assert "Black (1976)" in page and "16 regular scenarios" in page
    assert "Half-life (h)" in page and "λ·|j|·d" in page


def test_the_ladder_is_re_centred_as_the_underlying_drifts(options_market, later):
    # given: a short 102,000 call (open interest on the top of the ladder), then BTC down to
    # 80,000: the ladder (90,000…102,000) no longer has a strike near the money
    top = Instrument.objects.filter(kind="option", underlying__symbol="BTC", strike=102000)
    call = top.filter(option_type="call").order_by("expiry")[0]
    account = funded_account(usdt="50000", fills=[(call.symbol, "sell", "1")])
    market_prices(at=later(2), BTC=80000, USDT=1)
    # when
    listed = options_listing_ensure(now=later(3))
    # then: each of the three live BTC expiries gains the ladder around 80,000 (steps of
    # 2,000: 74,000…86,000), calls and puts; ETH did not move
    btc = Instrument.objects.filter(kind="option", underlying__symbol="BTC", is_active=True)
    assert len(listed) == 3 * 7 * 2 and all(s.startswith("BTC-") for s in listed)
    new = btc.filter(symbol__in=listed)
    assert sorted({s for s in new.values_list("strike", flat=True)}) == [
        Decimal(74000 + 2000 * n) for n in range(7)
    ]
    assert set(new.values_list("expiry", flat=True)) == set(
        btc.exclude(symbol__in=listed).values_list("expiry", flat=True)
    )
    assert MarkPrice.objects.filter(instrument__in=new).count() == len(listed)
    # the strikes listed before stay, the one held above all
    assert btc.count() == 3 * 14 * 2
    assert Position.objects.get(margin_account=account, instrument=call).quantity == -1
    assert Instrument.objects.get(pk=call.pk).is_active
    assert options_listing_ensure(now=later(4)) == []

"""Options listed on a strike ladder per term, marked by Black-76 on the perpetual's mark
with the surface's vol, rolled as they expire (PostgreSQL)."""

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse

from accounts.roles import RISK_OFFICER
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
from margin.models import (
    GuardRejection,
    Instrument,
    MarkPrice,
    MarkPriceHistory,
    Position,
    SimulatedAsset,
)
from margin.selectors.market import stale_symbols
from margin.services.option_marks import VOL_QUANTUM
from margin.services.options_listing import options_listing_ensure, strike_ladder
from margin.services.prices import demo_market_step, prices_refresh
from margin.services.revaluation import revaluation_tick_run
from tests.factories import UserFactory
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


def test_a_stressed_regime_lifts_option_marks_walked_in_by_the_vol_guard(options_market, reference):
    # given: a short-dated put marked in the calm regime
    option = series("put", 96000, 0)
    later = options_market + timedelta(seconds=2)
    prices_refresh(now=later)
    calm = MarkPrice.objects.get(instrument=option)
    # when: the demo market turns stressed (2.5× the calm vol at the short end)
    SimulatedAsset.objects.create(
        asset=option.underlying, price=95000, regime="stressed", stepped_at=later
    )
    prices_refresh(now=later + timedelta(seconds=1))
    # then: the vol moves by the guard's band (10 %) in one tick, logged for the desk
    band = reference.vol_guard_max_move
    first = MarkPrice.objects.get(instrument=option)
    assert first.implied_vol == (calm.implied_vol * (1 + band)).quantize(VOL_QUANTUM)
    assert first.mark_price > calm.mark_price and not first.uncertain
    (capped,) = GuardRejection.objects.filter(kind="vol", symbol=option.symbol)
    assert (capped.source, capped.reason) == ("surface", "capped")
    assert (capped.reference_price, capped.counted_price) == (calm.implied_vol, first.implied_vol)
    assert capped.price > 2 * calm.implied_vol  # the surface's own vol
    # and the rest is walked in tick by tick: ln 2.5 / ln 1.1 ≈ 10 ticks
    for tick in range(2, 12):
        prices_refresh(now=later + timedelta(seconds=tick))
    stressed = MarkPrice.objects.get(instrument=option)
    assert stressed.implied_vol > 2 * calm.implied_vol
    assert stressed.implied_vol == pytest.approx(capped.price, rel=Decimal("0.01"))


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


def test_a_recorded_jump_raises_the_vol_of_a_short_atm_option_mark_within_the_band(
    options_market, settings, reference
):
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
    # a 5 % gap down, whatever the draw, so that the lift is known (2 × 5 % ≈ 10 vol points,
    # some 18 % of the short end's 55 %)
    SimulatedAsset.objects.update(last_jump_log_return=Decimal("-0.05"))
    prices_refresh(now=jumped_at)
    after = MarkPrice.objects.get(instrument=option)
    # the vol guard lets 10 % of it through in this tick (about 5.5 vol points), the rest the
    # next
    (capped,) = GuardRejection.objects.filter(kind="vol", symbol=option.symbol, at=jumped_at)
    assert capped.price > before.implied_vol + Decimal("0.08")
    band = reference.vol_guard_max_move
    assert after.implied_vol == (before.implied_vol * (1 + band)).quantize(VOL_QUANTUM)
    assert after.implied_vol > before.implied_vol + Decimal("0.05")
    prices_refresh(now=jumped_at + timedelta(seconds=1))
    settled = MarkPrice.objects.get(instrument=option)
    assert settled.implied_vol == pytest.approx(capped.price, abs=Decimal("0.002"))


def test_a_stale_surface_holds_the_option_marks_uncertain_and_the_tick_says_why(
    options_market, later, reference, client
):
    # given: a short BTC put marked on the demo market's surface, stepped at later(1)
    put = series("put", 94000, 1)
    account = funded_account(usdt="20000", fills=[(put.symbol, "sell", "1")])
    SimulatedAsset.objects.create(
        asset=put.underlying, price=95000, regime="calm", stepped_at=later(1)
    )
    max_age = reference.price_guard_max_age_s
    marked_at = later(max_age - 5)
    market_prices(at=marked_at, BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    marked = MarkPrice.objects.get(instrument=put)
    assert not marked.uncertain and marked.updated_at == marked_at
    # when: the venues keep quoting, but the surface's market has not stepped for longer than
    # the age limit
    stale_at = later(1 + max_age + 5)
    market_prices(at=stale_at, BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    run = revaluation_tick_run(now=stale_at)
    # then: the BTC options' marks hold, uncertain with why, and no vol of them is recorded
    held = MarkPrice.objects.get(instrument=put)
    assert (held.mark_price, held.implied_vol) == (marked.mark_price, marked.implied_vol)
    assert held.updated_at == marked_at
    why = f"BTC vol surface stale: no fresh vol for {max_age + 5} s (limit {max_age} s)"
    assert held.uncertain_reason == why
    assert not MarkPriceHistory.objects.filter(instrument=put, at=stale_at).exists()
    # the forward and the ETH options (no surface input of their own) are marked as usual
    assert MarkPrice.objects.get(instrument__symbol="BTCUSDT").updated_at == stale_at
    eth = MarkPrice.objects.filter(instrument__kind="option", instrument__underlying__symbol="ETH")
    assert {m.updated_at for m in eth} == {stale_at} and not any(m.uncertain for m in eth)
    # the tick will not liquidate on them and says why, as on an uncertain index
    tick = run.start.tick
    assert tick.price_doubts[put.symbol] == f"uncertain: {why}"
    assert put.symbol not in tick.stale_symbols  # not yet past the age limit itself
    # the trader's page says it
    client.force_login(account.owner)
    page = client.get(reverse("trader:account", args=[account.pk])).content.decode()
    assert f"No liquidation on {put.symbol} (uncertain: {why})" in page
    # and the desk's prices page
    client.force_login(UserFactory(role=RISK_OFFICER))
    prices = client.get(reverse("desk:prices")).content.decode()
    assert f"{why}" in prices
    # once the mark is older than the age limit too it is also stale, as a held index is
    later_still = marked_at + timedelta(seconds=max_age + 1)
    market_prices(at=later_still, BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    assert put.symbol in stale_symbols(now=later_still, max_age_s=max_age)


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

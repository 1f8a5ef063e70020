from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from margin.engine.quotes import PERP, SPOT, Quote
from margin.market.demo import JUMP_RATE, VENUES, MarketState, market_step
from margin.models import (
    Asset,
    AssetPrice,
    AssetPriceHistory,
    GuardRejection,
    Instrument,
    MarkPrice,
    SourceQuote,
)
from margin.selectors.market import price_history, stale_symbols
from margin.services.prices import (
    _demo_jump_rate,
    demo_market_step,
    market_tick_run,
    price_history_prune,
    prices_refresh,
    quotes_record,
)

pytestmark = pytest.mark.django_db


def spot(source, symbol, price, at):
    return Quote(source, SPOT, symbol, Decimal(price), at)


def three_venues(symbol, price, at, **overrides):
    return [spot(v, symbol, overrides.get(v, price), at) for v in VENUES]


def test_demo_market_quotes_every_asset_and_instrument_on_three_venues(reference, now, later):
    # given
    rng = np.random.default_rng(7)
    # when: a minute of one-second market ticks
    for second in range(60):
        demo_market_step(now=later(second), rng=rng)
        prices_refresh(now=later(second))
    # then
    n_assets = Asset.objects.count()
    n_instruments = Instrument.objects.filter(is_active=True).count()
    assert SourceQuote.objects.count() == len(VENUES) * (n_assets + n_instruments)
    assert AssetPriceHistory.objects.count() == 60 * n_assets
    usdt = AssetPrice.objects.get(asset__symbol="USDT").price
    assert abs(usdt - 1) < Decimal("0.01")
    btc = [h.price for h in price_history(Asset.objects.get(symbol="BTC"), now)]
    assert len(set(btc)) > 50, "the price moves"
    assert all(abs(p / btc[0] - 1) < Decimal("0.2") for p in btc)
    assert stale_symbols(now=later(59), max_age_s=reference.price_guard_max_age_s) == []
    assert GuardRejection.objects.count() == 0, "venue noise stays far inside the guard"


def test_one_source_printing_a_50_percent_spike_is_left_out_and_logged(reference, now, later):
    # given: an accepted BTC index at 95,000
    quotes_record(quotes=three_venues("BTC", "95000", now))
    prices_refresh(now=now)
    # when: one venue prints 50% higher
    quotes_record(quotes=three_venues("BTC", "95010", later(1), **{"venue-b": "142500"}))
    result = prices_refresh(now=later(1))
    # then
    assert result.asset_prices["BTC"] == Decimal("95010")
    rejection = GuardRejection.objects.get(symbol="BTC")
    assert (rejection.source, rejection.reason) == ("venue-b", GuardRejection.Reason.MOVE)
    assert rejection.reference_price == Decimal("95000")


def test_a_move_most_sources_confirm_is_the_market_moving(reference, now, later):
    # given
    quotes_record(quotes=three_venues("SOL", "230", now))
    prices_refresh(now=now)
    # when: two of three venues print 20% lower (beyond the 10% move limit)
    quotes_record(quotes=three_venues("SOL", "184", later(1), **{"venue-c": "229"}))
    prices_refresh(now=later(1))
    # then: the index follows the move; the venue left behind counts at the median + 5%
    # (184 × 1.05 = 193.2): (184 + 184 + 193.2) / 3
    assert AssetPrice.objects.get(asset__symbol="SOL").price == Decimal("187.066666666666666667")
    rejection = GuardRejection.objects.get(symbol="SOL")
    assert (rejection.source, rejection.reason) == ("venue-c", GuardRejection.Reason.CAPPED)
    assert rejection.counted_price == Decimal("193.2")


def test_a_stale_source_weighs_nothing_and_a_lone_fresh_one_makes_no_index(reference, now, later):
    # given
    max_age = reference.price_guard_max_age_s
    quotes_record(quotes=three_venues("ETH", "3400", now))
    prices_refresh(now=now)
    # when: only venue-a keeps quoting
    quotes_record(quotes=[spot("venue-a", "ETH", "3420", later(max_age + 1))])
    partly = prices_refresh(now=later(max_age + 1))
    # then: the stale venues weigh nothing, one venue is no quorum: the last index holds
    assert "ETH" not in partly.asset_prices
    assert partly.uncertain["ETH"] == "1 fresh source(s), 2 needed"
    eth = AssetPrice.objects.get(asset__symbol="ETH")
    assert (eth.price, eth.uncertain) == (Decimal("3400"), True)
    assert set(
        GuardRejection.objects.filter(symbol="ETH", reason="stale").values_list("source", flat=True)
    ) == {"venue-b", "venue-c"}
    assert GuardRejection.objects.filter(symbol="ETH", reason="quorum", source="venue-a").exists()
    # when: nobody quotes any more
    dead = prices_refresh(now=later(3 * max_age))
    # then: ETH keeps its last price and is stale
    assert "ETH" not in dead.asset_prices
    assert AssetPrice.objects.get(asset__symbol="ETH").price == Decimal("3400")
    assert "ETH" in stale_symbols(now=later(3 * max_age), max_age_s=max_age)


def test_mark_is_index_plus_a_smoothed_basis_so_one_perp_print_barely_moves_it(
    reference, now, later
):
    # given: index and perpetual at 95,000 (basis 0)
    perp = [Quote(v, PERP, "BTCUSDT", Decimal("95000"), now) for v in VENUES]
    quotes_record(quotes=three_venues("BTC", "95000", now) + perp)
    prices_refresh(now=now)
    # when: for one second every venue's perpetual trades 2% over the index
    spike = [Quote(v, PERP, "BTCUSDT", Decimal("96900"), later(1)) for v in VENUES]
    quotes_record(quotes=three_venues("BTC", "95000", later(1)) + spike)
    prices_refresh(now=later(1))
    # then: the mark moved by the EMA weight of one second (1 − e^(−1/60) ≈ 1.65%) of 1,900
    mark = MarkPrice.objects.get(instrument__symbol="BTCUSDT")
    assert mark.index_price == Decimal("95000")
    assert Decimal("30") < mark.mark_price - mark.index_price < Decimal("33")


def test_prune_drops_history_older_than_the_setting(reference, now, later, settings):
    # given
    settings.PRICE_HISTORY_KEEP_S = 60
    quotes_record(quotes=three_venues("BTC", "95000", now))
    prices_refresh(now=now)
    quotes_record(quotes=three_venues("BTC", "95001", later(120)))
    prices_refresh(now=later(120))
    # when
    price_history_prune(now=later(121))
    # then
    kept = AssetPriceHistory.objects.filter(asset__symbol="BTC")
    assert [h.price for h in kept] == [Decimal("95001")]


def test_market_tick_runs_the_demo_market_then_the_refresh(reference, now):
    # when
    result = market_tick_run(now=now + timedelta(seconds=1))
    # then
    assert set(result.asset_prices) == set(Asset.objects.values_list("symbol", flat=True))
    assert set(result.marks) == set(
        Instrument.objects.filter(is_active=True).values_list("symbol", flat=True)
    )


def test_the_demo_market_gaps_about_every_15_minutes_of_wall_clock(settings):
    # given: the demo's rate (jumps per wall-clock hour) at its speed of 60
    settings.DEMO_MARKET_JUMPS_PER_HOUR, settings.DEMO_MARKET_SPEED = 4.0, 60.0
    rate = _demo_jump_rate()
    # when: an hour of wall clock, one market tick a second (60 simulated seconds each)
    state = MarketState(symbols=("BTC",), prices=np.array([95_000.0]), regime="calm")
    rng = np.random.default_rng(3)
    jumps, hours = 0, 6
    for _ in range(hours * 3600):
        before = state.prices[0]
        state = market_step(state, dt_s=60.0, rng=rng, jump_rate=rate)
        # a diffusion step of 60 s at the stressed 137 % a year is ~0.2 %: 1 % is a jump
        jumps += abs(np.log(state.prices[0] / before)) > 0.01
    # then: about 4 an hour, three in four of them larger than 1 % (jumps are −1 % ± 3 %): a
    # Poisson count of 18 expected over 6 hours
    assert rate == pytest.approx(4 / 3600 / 60)
    assert 8 <= jumps <= 32
    # and tests keep the model's own rate (one a week)
    settings.DEMO_MARKET_JUMPS_PER_HOUR = None
    assert _demo_jump_rate() == JUMP_RATE

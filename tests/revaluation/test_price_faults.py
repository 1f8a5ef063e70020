"""Bad input on the price side: one wild print, a stale feed, a collateral de-peg on one venue."""

from decimal import Decimal

import pytest

from margin.market.demo import VENUES
from margin.market.quotes import SPOT, Quote
from margin.market.selectors import latest_snapshot
from margin.models import (
    AccountEvent,
    AccountState,
    AssetPrice,
    AuditEntry,
    Fill,
    GuardRejection,
    Liquidation,
    ParameterVersion,
    SourceQuote,
)
from margin.services.liquidation import liquidation_run
from margin.services.prices import prices_refresh, quotes_record
from margin.services.revaluation import revaluation_tick_run
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def run_tick_and_liquidations(at):
    run = revaluation_tick_run(now=at)
    for account_id, tick_id in run.to_liquidate:
        liquidation_run(account_id=account_id, tick_id=tick_id)
    return run


def test_one_source_spiking_50_percent_liquidates_no_one(market, later):
    # given: a long in margin call (ratio ≈ 0.9 at BTC 85,427)
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    market_prices(at=later(1), BTC=85427, USDT=1)
    run_tick_and_liquidations(later(2))
    account.refresh_from_db()
    assert account.state == AccountState.MARGIN_CALL
    # when: venue-a prints BTC 50% lower, on spot and on the perpetual
    market_prices(at=later(3), BTC=85430, USDT=1)
    quotes_record(quotes=[Quote("venue-a", SPOT, "BTC", Decimal("42715"), later(4))])
    prices_refresh(now=later(4))
    run = run_tick_and_liquidations(later(5))
    # then
    assert run.to_liquidate == [] and Liquidation.objects.count() == 0
    account.refresh_from_db()
    assert account.state == AccountState.MARGIN_CALL
    assert AssetPrice.objects.get(asset__symbol="BTC").price == Decimal("85430")
    assert GuardRejection.objects.filter(source="venue-a", symbol="BTC", reason="move").exists()


def test_a_stale_feed_is_flagged_and_nothing_is_liquidated_on_it(market, later, reference):
    # given: BTC's last prices put a long past its liquidation line...
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    market_prices(at=later(1), BTC=85000, USDT=1)
    # ...and then every feed goes quiet
    stale_at = later(reference.price_guard_max_age_s + 5)
    prices_refresh(now=stale_at)
    # when
    run = run_tick_and_liquidations(stale_at)
    # then: the tick computed on the last prices and flagged them; the liquidation found the
    # stale price material (the whole position is on it) and held back, saying so (issue 14)
    tick = run.start.tick
    assert {"BTC", "BTCUSDT"} <= set(tick.stale_symbols)
    snapshot = latest_snapshot(account)
    assert snapshot.is_stale and snapshot.state == AccountState.BANKRUPT
    (held,) = Liquidation.objects.all()
    assert held.status == Liquidation.Status.HELD
    assert not Fill.objects.exclude(reason=Fill.Reason.TRADE).exists()
    blocked = AccountEvent.objects.filter(account=account, kind=AccountEvent.Kind.STALE_BLOCKED)
    assert {e.detail["symbol"] for e in blocked} == {"BTC", "BTCUSDT"}
    assert AuditEntry.objects.filter(action="desk.alert.stale_blocked").exists()
    # and a liquidation task that arrives again for it books nothing
    late = liquidation_run(account_id=account.pk, tick_id=tick.pk)
    assert late.status == Liquidation.Status.HELD


def depeg_account():
    """2,000 USDC (haircut ratio 1 under 5M) and 10 USDT for the fee behind a 0.2 BTC long at
    10x, BTC down to 86,500: collateral 2,000.5, uPnL −1,700, maintenance margin 69.2."""
    return funded_account(usdt="10", USDC="2000", fills=[("BTCUSDT", "buy", "0.2")])


@pytest.fixture
def depeg_market(market, later):
    account = depeg_account()
    market_prices(at=later(1), BTC=86500, USDT=1, USDC=1)
    run_tick_and_liquidations(later(2))
    account.refresh_from_db()
    assert account.state == AccountState.HEALTHY
    return account


def test_usdc_depegging_on_one_of_three_venues_is_left_out_by_the_guard(depeg_market, later):
    # when: venue-c prints USDC at 0.65 (the 2025-10-10 kind of print)
    market_prices(at=later(3), BTC=86500, USDT=1, USDC=1, venues=("venue-a", "venue-b"))
    quotes_record(quotes=[Quote("venue-c", SPOT, "USDC", Decimal("0.65"), later(3))])
    prices_refresh(now=later(3))
    run = run_tick_and_liquidations(later(4))
    # then: the index stays at the peg, the haircut (ratio 1) values the USDC in full
    assert AssetPrice.objects.get(asset__symbol="USDC").price == Decimal(1)
    assert GuardRejection.objects.filter(source="venue-c", symbol="USDC").exists()
    snapshot = latest_snapshot(depeg_market)
    assert snapshot.collateral_value == pytest.approx(Decimal("2000.5"))
    assert snapshot.state == AccountState.HEALTHY
    assert run.to_liquidate == [] and Liquidation.objects.count() == 0


def test_without_the_guard_a_single_venue_depeg_bankrupts_the_account(
    depeg_market, later, reference
):
    # given: no guard (any move accepted) and USDC priced from one venue only, its own book
    ParameterVersion.objects.filter(pk=reference.pk).update(price_guard_max_move=1000)
    SourceQuote.objects.filter(symbol="USDC").exclude(source=VENUES[2]).delete()
    # when
    market_prices(at=later(3), BTC=86500, USDT=1)
    quotes_record(quotes=[Quote(VENUES[2], SPOT, "USDC", Decimal("0.65"), later(3))])
    prices_refresh(now=later(3))
    run = run_tick_and_liquidations(later(4))
    # then: 2,000 USDC × 0.65 × ratio 1 + 0.5 USDT = 1,300.5 of collateral, the pool is below 0
    assert AssetPrice.objects.get(asset__symbol="USDC").price == Decimal("0.65")
    snapshot = latest_snapshot(depeg_market)
    assert snapshot.collateral_value == pytest.approx(Decimal("1300.5"))
    assert snapshot.state == AccountState.BANKRUPT
    (liquidation,) = Liquidation.objects.all()
    assert liquidation.account_id == depeg_market.pk
    assert liquidation.status == Liquidation.Status.DONE
    assert run.to_liquidate == [(depeg_market.pk, run.start.tick.pk)]

"""Bad input on the price side: one wild print, a stale feed, a collateral de-peg on one venue,
venues dropping out (the quorum), and the mark's median of three.

Sources: Binance USDⓈ-M Price Index (https://www.binance.com/en/support/faq/360033525071): a
source more than 5% from the median is capped at median × (1 ± 5%); a source silent for 10 s
weighs zero. Binance Mark Price in Perpetual Futures (https://www.binance.com/en/support/faq/
fff6ec1b3f5845d19f1fb924644a0877): mark = median(index × (1 + funding rate × time to funding ÷
interval), index + moving-average basis, last price).
"""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import RISK_OFFICER, TRADER
from margin.engine.prices import funding_basis_price, seconds_to_funding
from margin.engine.quotes import PERP, SPOT, Quote
from margin.market.demo import VENUES
from margin.models import (
    AccountEvent,
    AccountState,
    AssetPrice,
    AuditEntry,
    Case,
    Fill,
    GuardRejection,
    Liquidation,
    MarkPrice,
    ParameterVersion,
    SourceQuote,
)
from margin.selectors.market import latest_snapshot, price_unfit_reason
from margin.services.liquidation import liquidation_run
from margin.services.prices import prices_refresh, quotes_record
from margin.services.revaluation import revaluation_tick_run
from tests.factories import UserFactory
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
    assert {e.detail["symbol"] for e in blocked} >= {"BTC", "BTCUSDT"}
    assert AuditEntry.objects.filter(action="desk.alert.stale_blocked").exists()
    # and a liquidation task that arrives again for it books nothing
    late = liquidation_run(account_id=account.pk, tick_id=tick.pk)
    assert late.status == Liquidation.Status.HELD


def test_a_held_liquidation_opens_one_system_case_the_desk_sees(
    market, later, reference, client, make_user
):
    # given: the stale feed of the test above holds a bankrupt long's liquidation back
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    market_prices(at=later(1), BTC=85000, USDT=1)
    stale_at = later(reference.price_guard_max_age_s + 5)
    prices_refresh(now=stale_at)
    # when: the tick and its liquidation, then the next tick with the feed still silent
    run_tick_and_liquidations(stale_at)
    (case,) = Case.objects.all()
    run_tick_and_liquidations(later(reference.price_guard_max_age_s + 10))
    # then: one open case, opened by the system, unassigned, naming the stale prices; the
    # next tick held the liquidation again and opened no second case
    assert Liquidation.objects.filter(status=Liquidation.Status.HELD).count() == 2
    assert list(Case.objects.all()) == [case]
    assert case.margin_account == account and case.status == Case.Status.OPEN
    assert case.opened_by is None and case.assignee is None
    assert case.summary.startswith("Liquidation held back by a stale price: BTC (")
    (opened,) = AuditEntry.objects.filter(action="case.open")
    assert opened.actor is None and opened.after["opened_by"] == "system"
    alerts = AuditEntry.objects.filter(action="desk.alert.stale_blocked")
    assert [a.after["case"] for a in alerts] == [case.pk, case.pk]
    # and the officers see it: in the case list as opened by the system, in the queue
    client.force_login(make_user(RISK_OFFICER))
    listed = client.get(reverse("desk:cases"), {"status": "open"}).content.decode()
    assert f'href="{reverse("desk:case", args=[case.pk])}"' in listed
    assert '<td class="case-opener">system</td>' in listed
    queue = client.get(reverse("desk:landing"), {"stale_blocked": "true"}).content.decode()
    assert f">case {case.pk}</a>" in queue
    page = client.get(reverse("desk:case", args=[case.pk])).content.decode()
    assert "Opened by system" in page


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
    # given: no guard (any move accepted, one source a quorum, no cap) and USDC priced from one
    # venue only, its own book
    ParameterVersion.objects.filter(pk=reference.pk).update(
        price_guard_max_move=1000,
        price_guard_min_sources=1,
        price_guard_agreement_band=1000,
        price_guard_source_cap=1000,
    )
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


def prints(at, symbol, instrument, **by_venue):
    """Each named venue prints `symbol` spot and its `instrument` at the same price."""
    return [
        Quote(venue, kind, name, Decimal(str(price)), at)
        for venue, price in by_venue.items()
        for kind, name in ((SPOT, symbol), (PERP, instrument))
    ]


def btc():
    return AssetPrice.objects.get(asset__symbol="BTC")


def btc_mark():
    return MarkPrice.objects.get(instrument__symbol="BTCUSDT")


def test_repro_one_venue_silent_and_one_minus_9_percent_print_moves_nothing(market, later):
    """Before: with venue-c silent, venue-a printing −9% made the index 95,500 (−4.5%) and the
    mark 100,000.02 → 95,503.84 in one refresh. Now the two fresh venues disagree: no quorum,
    the index and the mark hold, uncertain."""
    # given: the three venues at 100,000
    market_prices(at=later(1), BTC=100000)
    mark_before = btc_mark().mark_price
    # when: venue-c goes silent past the age limit, venue-a prints 91,000
    at = later(1 + 31)
    quotes_record(quotes=prints(at, "BTC", "BTCUSDT", **{"venue-a": 91000, "venue-b": 100000}))
    result = prices_refresh(now=at)
    # then
    assert btc().price == Decimal(100000)
    assert btc().uncertain_reason == (
        "sources disagree: 0 of 2 within 2% of their median, 2 needed"
    )
    assert btc_mark().mark_price == mark_before
    assert btc_mark().uncertain_reason.startswith("BTC index uncertain")
    assert result.uncertain.keys() >= {"BTC", "BTCUSDT"}
    assert set(
        GuardRejection.objects.filter(symbol="BTC", reason="quorum").values_list(
            "source", flat=True
        )
    ) == {"venue-a", "venue-b"}


def test_repro_one_fresh_venue_cannot_walk_the_index_down(market, later):
    """Before: one fresh venue printing −9% a tick walked BTC 95,000 → 86,450, 78,669.50,
    71,589.24, 65,146.21, 59,283.05 in 5 ticks. Now one source is no quorum: it holds 95,000."""
    # given: venues b and c silent past the age limit
    price = Decimal(95000)
    seen = []
    for tick in range(5):
        at = later(31 + tick)
        price *= Decimal("0.91")
        quotes_record(quotes=[Quote("venue-a", SPOT, "BTC", price, at)])
        prices_refresh(now=at)
        seen.append(btc().price)
    # then
    assert seen == [Decimal(95000)] * 5
    assert btc().uncertain_reason == "1 fresh source(s), 2 needed"
    # every print logged: the first one short of a quorum, the next ones also too far alone
    reasons = GuardRejection.objects.filter(symbol="BTC", source="venue-a").order_by("at")
    assert list(reasons.values_list("reason", flat=True)) == ["quorum"] + ["move"] * 4


def test_a_real_move_every_venue_agrees_on_passes_through_and_clears_the_doubt(market, later):
    # given: BTC uncertain (two venues disagree)
    quotes_record(quotes=prints(later(1), "BTC", "BTCUSDT", **{"venue-a": 91000, "venue-c": 99000}))
    quotes_record(quotes=[Quote("venue-b", SPOT, "BTC", Decimal(100000), later(-60))])
    prices_refresh(now=later(1))
    assert btc().uncertain
    # when: every venue prints 12% lower (past the 10% move limit, but all of them)
    market_prices(at=later(2), BTC=83600)
    # then
    assert btc().price == Decimal(83600) and not btc().uncertain
    assert btc_mark().index_price == Decimal(83600) and not btc_mark().uncertain
    assert not GuardRejection.objects.filter(at=later(2)).exists()


def test_a_venue_off_the_median_counts_capped_and_the_desk_sees_it(market, later):
    # when: venue-c prints BTC 8% under the others (inside the 10% move limit)
    quotes_record(
        quotes=[
            Quote("venue-a", SPOT, "BTC", Decimal(95000), later(1)),
            Quote("venue-b", SPOT, "BTC", Decimal(95000), later(1)),
            Quote("venue-c", SPOT, "BTC", Decimal(87400), later(1)),
        ]
    )
    prices_refresh(now=later(1))
    # then: it counts at 95,000 × 0.95 = 90,250; index (95,000 × 2 + 90,250) / 3, stored to
    # 18 places
    assert btc().price == Decimal("93416.666666666666666667")
    event = GuardRejection.objects.get(symbol="BTC")
    assert (event.source, event.reason, event.price, event.reference_price) == (
        "venue-c",
        "capped",
        Decimal(87400),
        Decimal(95000),
    )
    assert event.counted_price == Decimal(90250)


def perps(at, price):
    return [Quote(v, PERP, "BTCUSDT", Decimal(price), at) for v in VENUES]


def spots(at, price):
    return [Quote(v, SPOT, "BTC", Decimal(price), at) for v in VENUES]


def test_the_last_traded_price_is_the_mark_when_it_lies_between_the_other_two(market, later):
    # given: index 100,000; the perpetual trades at 100,100: the smoothed basis moves by
    # 1 − e^(−1/60) of the 100 (index + basis ≈ 100,001.65); funding unknown (rate 0)
    quotes_record(quotes=spots(later(1), 100000) + perps(later(1), 100100))
    prices_refresh(now=later(1))
    assert btc_mark().binding == "basis"
    # when: the perpetual trades at 100,001, under index + basis, over index + funding basis
    quotes_record(quotes=spots(later(2), 100000) + perps(later(2), 100001))
    prices_refresh(now=later(2))
    # then
    mark = btc_mark()
    assert mark.funding_price == Decimal(100000) < mark.last_price < mark.basis_price
    assert (mark.binding, mark.mark_price) == ("last", Decimal(100001))


def test_a_funding_rate_fed_in_gives_the_funding_price_binance_price_1(market, later):
    # when: a funding rate of 1% is known for BTCUSDT
    quotes_record(quotes=spots(later(1), 100000) + perps(later(1), 100000))
    prices_refresh(now=later(1), funding_rates={"BTCUSDT": Decimal("0.01")})
    # then: index × (1 + rate × time until funding ÷ 8 h), and the mark the middle term
    mark = btc_mark()
    expected = funding_basis_price(
        Decimal(100000),
        funding_rate=Decimal("0.01"),
        seconds_until_funding=seconds_to_funding(later(1).timestamp()),
    )
    assert mark.funding_price == expected.quantize(Decimal("1e-18"))  # stored to 18 places
    terms = sorted([mark.basis_price, mark.funding_price, mark.last_price])
    assert mark.mark_price == terms[1]


def uncertain_btc_over_a_due_account(market, later):
    """A long due for liquidation at BTC 85,000 (all venues agree), then BTC's venues
    disagree: the index holds 85,000, uncertain."""
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    market_prices(at=later(1), BTC=85000, USDT=1)
    quotes_record(
        quotes=prints(
            later(2), "BTC", "BTCUSDT", **{"venue-a": 85000, "venue-b": 80000, "venue-c": 90000}
        )
    )
    prices_refresh(now=later(2))
    assert btc().price == Decimal(85000) and btc().uncertain
    return account


def test_nothing_is_liquidated_on_an_uncertain_price(market, later, reference):
    # given
    account = uncertain_btc_over_a_due_account(market, later)
    # when
    run = run_tick_and_liquidations(later(3))
    # then: the account is past its line at the held price, but not liquidated on it
    tick = run.start.tick
    assert tick.price_doubts["BTC"].startswith("uncertain: sources disagree")
    assert latest_snapshot(account).state == AccountState.BANKRUPT
    # the liquidation found the uncertain price material (the position is on it) and held
    # back, saying why (issue 14: uncertain prices feed the same materiality rule as stale)
    (held,) = Liquidation.objects.all()
    assert held.status == Liquidation.Status.HELD and "BTC" in held.steps[-1]["reason"]
    assert not Fill.objects.exclude(reason=Fill.Reason.TRADE).exists()
    assert price_unfit_reason("BTC", now=later(3), max_age_s=reference.price_guard_max_age_s)
    # and a liquidation task that arrives again books nothing
    late = liquidation_run(account_id=account.pk, tick_id=tick.pk)
    assert late.status == Liquidation.Status.HELD


def test_the_account_page_says_why_it_is_not_liquidated(market, later, client):
    # given
    account = uncertain_btc_over_a_due_account(market, later)
    run_tick_and_liquidations(later(3))
    client.force_login(account.owner)
    # when
    page = client.get(reverse("trader:account", args=[account.pk])).content.decode()
    # then
    assert 'data-testid="price-doubts"' in page
    assert "No liquidation on BTC (uncertain: sources disagree" in page


def test_the_desk_page_and_the_api_show_uncertain_prices_and_the_rejected_prints(
    market, later, client
):
    # given
    uncertain_btc_over_a_due_account(market, later)
    officer = UserFactory(role=RISK_OFFICER)
    client.force_login(officer)
    # when
    page = client.get(reverse("desk:prices")).content.decode()
    events = client.get(reverse("api:desk-guard-events"), {"symbol": "BTC"}).json()
    prices = client.get(reverse("api:prices")).json()
    # then: each venue's BTC print with its price and reason, newest first
    assert "sources disagree: 1 of 3 within 2% of their median, 2 needed" in page
    assert {(e["source"], e["price"], e["reason"]) for e in events["results"]} >= {
        ("venue-b", "80000.000000000000000000", "quorum"),
        ("venue-c", "90000.000000000000000000", "quorum"),
    }
    index = next(p for p in prices["indexes"] if p["asset"] == "BTC")
    assert (index["uncertain"], index["is_stale"]) == (True, False)
    mark = next(m for m in prices["marks"] if m["instrument"] == "BTCUSDT")
    assert mark["uncertain"] and mark["uncertain_reason"].startswith("BTC index uncertain")


def test_a_trader_cannot_read_the_guard_events(market, later):
    # given
    api = APIClient()
    api.force_login(UserFactory(role=TRADER))
    # when / then
    assert api.get(reverse("api:desk-guard-events")).status_code == 403
    assert api.get(reverse("api:prices")).status_code == 200

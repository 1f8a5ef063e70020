"""Stress and cascade runs on the database's book, held to the reference engine quoting each
account (as the ledger gives it) at the shocked prices."""

import math
from decimal import Decimal

import pytest
from django.urls import reverse

from margin.engine.reference import quote_account
from margin.models import CascadeRun, StressRun
from margin.selectors.accounts import engine_accounts
from margin.selectors.desk import insurance_fund_value
from margin.services.cascade import cascade_run_execute
from margin.services.liquidation import insurance_fund_deposit
from tests.desk.books import at_prices

pytestmark = pytest.mark.django_db

PRICES = {"BTC": Decimal(85400), "ETH": Decimal(3400), "SOL": Decimal(230)}


def shocked_prices(moves: dict[str, float]) -> dict[str, Decimal]:
    prices = {"USDT": Decimal(1), "USDC": Decimal(1), **PRICES}
    return {a: Decimal(float(p) * (1.0 + moves.get(a, 0.0))) for a, p in prices.items()}


def test_uniform_stress_run_matches_the_reference_on_each_account(client, officer, book):
    # given
    insurance_fund_deposit(amount=Decimal("100"), memo="seed the fund")
    client.force_login(officer)
    # when
    response = client.post(reverse("desk:stress_run"), {"scenario": "uniform", "move": "-0.05"})
    # then
    run = StressRun.objects.get()
    assert response.url == reverse("desk:stress_detail", args=[run.pk])
    prices = shocked_prices(run.details["moves"])
    under, shortfall, deficit = 0, Decimal(0), Decimal(0)
    for account in engine_accounts([a.pk for a in book.values()]).values():
        quote = quote_account(at_prices(account, prices))
        if quote.maintenance_margin > 0 and quote.maintenance_margin >= quote.margin_balance:
            under += 1
            shortfall += quote.maintenance_margin - quote.margin_balance
        deficit += max(Decimal(0), -quote.margin_balance)
    assert run.details["moves"]["BTC"] == pytest.approx(-0.05)
    assert run.details["moves"]["USDT"] == 0 and run.details["moves"]["USDC"] == 0
    assert run.accounts == 3 and run.accounts_under_maintenance == under == 2
    assert run.maintenance_shortfall == pytest.approx(shortfall, rel=Decimal("1e-9"))
    assert run.deficit == pytest.approx(deficit, rel=Decimal("1e-9")) and run.deficit > 0
    assert run.insurance_fund == insurance_fund_value() == Decimal(100)
    assert run.coverage == pytest.approx(Decimal(100) / deficit, rel=Decimal("1e-6"))
    page = client.get(reverse("desk:stress_detail", args=[run.pk])).content.decode()
    assert 'id="under-maintenance">2<' in page


def test_depeg_moves_only_the_chosen_asset(client, officer, book):
    client.force_login(officer)
    client.post(reverse("desk:stress_run"), {"scenario": "depeg", "asset": "USDT", "move": "-0.1"})
    run = StressRun.objects.get()
    assert {a: m for a, m in run.details["moves"].items() if m} == {"USDT": pytest.approx(-0.1)}
    # the pools count in USDT, their settlement coin: a 10 % fall of USDT leaves their USDT
    # collateral whole and lifts the USDT-quoted BTC marks by 1 / 0.9, so these all-USDT BTC
    # longs gain and none goes under maintenance (issue 15: a de-peg with the right sign)
    assert run.accounts_under_maintenance == 0


def test_replay_measures_the_recorded_crash_and_keeps_the_worst_step(client, officer, book):
    # given: the market recorded 95,000 → 90,000 → 85,400 for BTC
    client.force_login(officer)
    # when
    client.post(reverse("desk:stress_run"), {"scenario": "replay", "minutes": "30"})
    # then: the worst step is the whole fall, replayed from today's prices
    run = StressRun.objects.get()
    assert run.details["moves"]["BTC"] == pytest.approx(85400 / 95000 - 1)
    assert len(run.details["steps"]) == 2
    assert run.accounts_under_maintenance == 2


def test_an_unknown_asset_is_refused_with_a_message(client, officer, book):
    client.force_login(officer)
    response = client.post(
        reverse("desk:stress_run"),
        {"scenario": "depeg", "asset": "DAI", "move": "-0.1"},
        follow=True,
    )
    assert not StressRun.objects.exists()
    assert "No holding in DAI" in response.content.decode()


def test_cascade_task_body_writes_each_round_and_finishes(officer, book):
    # given: a 0.1 % BTC drop takes the margin-call account under; a thin market (1 % per
    # 10,000 USD sold) turns its liquidation into a 4 % fall that takes the warning one
    run = CascadeRun.objects.create(
        options={"scenario": "uniform", "move": "-0.001", "depth_usd": 10000, "max_rounds": 10},
        label="thin",
        created_by=officer,
    )
    # when
    cascade_run_execute(run_id=run.pk)
    # then
    run.refresh_from_db()
    assert run.status == CascadeRun.Status.DONE and run.progress == 100
    numbers = [r["number"] for r in run.rounds]
    assert numbers == list(range(1, len(numbers) + 1))
    liquidated = [set(r["accounts"]) for r in run.rounds]
    assert liquidated[0] == {book["margin_call"].pk}
    assert book["warning"].pk in set().union(*liquidated[1:])
    btc = [run.rounds[0]["prices_before"]["BTC"], *(r["prices"]["BTC"] for r in run.rounds)]
    assert btc[0] == pytest.approx(85400 * 0.999)
    assert btc[1] < 85400 * 0.96 and btc == sorted(btc, reverse=True)
    assert run.accounts_liquidated == sum(r["accounts_liquidated"] for r in run.rounds)
    assert run.rounds[-1]["accounts_liquidated"] == 0


def test_cascade_page_polls_its_progress_until_done(client, officer, book):
    client.force_login(officer)
    run = CascadeRun.objects.create(options={"scenario": "uniform"}, label="x", created_by=officer)
    fragment = client.get(
        reverse("desk:cascade_detail", args=[run.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<section class="card" id="cascade-progress"')
    assert 'hx-trigger="every 1s"' in fragment
    cascade_run_execute(run_id=run.pk)
    done = client.get(reverse("desk:cascade_detail", args=[run.pk])).content.decode()
    assert "hx-trigger" not in done.split('id="cascade-progress"')[1].split(">")[0]
    assert 'value="100"' in done
    assert "BTC: 68,320" in done  # the 20 % shock, then the path the liquidations push


def test_volatility_scenarios_use_the_ticks_stress_model_over_the_stress_horizon(
    client, officer, market, settings
):
    # given: 40 hours of market time with BTC moving ±1 % every hour (an hourly EWMA σ of
    # exactly 1 %, 4.9 % a day); ETH and SOL flat, so they stand at their published floors
    from datetime import timedelta

    from margin.models import Asset, AssetPriceHistory
    from margin.selectors.volatility import period_end, return_period_s
    from margin.services.revaluation import revaluation_tick_run
    from tests.revaluation.factories import funded_account

    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60
    funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.5")])
    # The history closes at the period of the tick's own time: aligned to an earlier instant,
    # a tick one second later can fall in the next period (1 run in 60 at the demo's speed).
    tick_at = market() + timedelta(seconds=1)
    end, hour = period_end(tick_at), timedelta(seconds=return_period_s())
    flat = {"USDT": 1, "USDC": 1, "ETH": 3400, "SOL": 230}
    btc = [95000 * (1.01 if step % 2 else 1 / 1.01) ** (step % 2) for step in range(41)]
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(
            asset=asset,
            at=end - (40 - step) * hour,
            price=Decimal(str(btc[step] if asset.symbol == "BTC" else flat[asset.symbol])),
        )
        for step in range(41)
        for asset in Asset.objects.all()
    )
    revaluation_tick_run(now=tick_at)
    client.force_login(officer)
    # when
    client.post(reverse("desk:stress_run"), {"scenario": "ewma", "k_sigma": "2"})
    client.post(reverse("desk:stress_run"), {"scenario": "correlated", "k_sigma": "2"})
    # then: k σ per day over the one-day horizon; the flat coins at their floors; USDT holds
    ewma, crash = StressRun.objects.order_by("pk")
    daily_btc = math.log(1.01) * math.sqrt(24)
    assert ewma.details["moves"]["BTC"] == pytest.approx(-2 * daily_btc, rel=1e-9)
    assert ewma.details["moves"]["ETH"] == pytest.approx(-2 * 0.025)
    assert ewma.details["moves"]["USDT"] == 0
    # BTC's variance is the largest and nothing correlates with it: the crash is BTC's move
    assert crash.details["moves"]["BTC"] == pytest.approx(ewma.details["moves"]["BTC"], rel=1e-6)


def test_volatility_scenario_without_a_tick_is_refused_with_a_message(client, officer, market):
    client.force_login(officer)
    response = client.post(reverse("desk:stress_run"), {"scenario": "ewma"}, follow=True)
    assert "No revaluation yet" in response.content.decode()
    assert not StressRun.objects.exists()


def test_desk_book_is_reused_until_the_book_changes_and_always_has_fresh_prices(book):
    from margin.models import MarkPrice
    from margin.selectors.book import desk_book
    from tests.ledger.support import fund

    # given
    first = desk_book()
    # when nothing changes but a mark
    MarkPrice.objects.filter(instrument__symbol="BTCUSDT").update(mark_price=Decimal(80000))
    second = desk_book()
    # then the arrays are the same, the mark is today's
    assert second.book is first.book
    btc = list(second.instrument_ids).index(
        MarkPrice.objects.get(instrument__symbol="BTCUSDT").instrument_id
    )
    assert second.marks[btc] == 80000 and first.marks[btc] == 85400
    # when a deposit books a journal, the book is loaded again with it
    fund(book["healthy"], "USDT", "1000")
    third = desk_book()
    assert third.book is not first.book
    assert third.book.col_quantity.sum() == pytest.approx(first.book.col_quantity.sum() + 1000)


def test_saved_stress_runs_page_past_the_first_25(client, officer):
    # given: 26 saved runs
    StressRun.objects.bulk_create(
        StressRun(
            scenario="uniform",
            label=f"run {n}",
            created_by=officer,
            accounts=0,
            accounts_under_maintenance=0,
            maintenance_shortfall=0,
            deficit=0,
            insurance_fund=0,
            duration_ms=1,
        )
        for n in range(26)
    )
    oldest = StressRun.objects.order_by("pk").first()
    client.force_login(officer)
    # when
    first = client.get(reverse("desk:stress")).content.decode()
    second = client.get(reverse("desk:stress"), {"page": 2}).content.decode()
    # then: the oldest run is on the second page, reached from the first
    assert "page 1 of 2" in first and "page=2" in first
    assert reverse("desk:stress_detail", args=[oldest.pk]) not in first
    assert reverse("desk:stress_detail", args=[oldest.pk]) in second


def test_a_real_event_runs_over_the_book_and_keeps_its_worst_day(client, officer, book):
    # given the FTX week: BTC −24.1 % at the 9 November 2022 close from 6 November
    client.force_login(officer)
    # when the desk runs it from the stress page
    client.post(reverse("desk:stress_run"), {"scenario": "event", "event": "november_2022"})
    # then every day is measured and the worst kept: BTC at its 9 November fall
    run = StressRun.objects.get()
    assert run.label.startswith("November 2022: the FTX collapse")
    assert run.details["moves"]["BTC"] == pytest.approx(15880.780273 / 20926.486328 - 1)
    # ETH by its own close (1,100.17 from 1,572.23)
    assert run.details["moves"]["ETH"] == pytest.approx(1100.17 / 1572.23 - 1)
    assert run.details["moves"]["USDT"] == 0
    assert len(run.details["steps"]) == 8
    assert run.accounts_under_maintenance >= 1


def test_an_unknown_event_is_refused_with_a_message(client, officer, book):
    client.force_login(officer)
    response = client.post(
        reverse("desk:stress_run"), {"scenario": "event", "event": "october_1987"}, follow=True
    )
    assert not StressRun.objects.exists()
    assert response.status_code == 200

from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pytest
from django.urls import reverse

from accounts.roles import TRADER
from margin.numbers import money_text
from margin.services.positions import position_market_fill
from margin.services.prices import demo_market_step, prices_refresh
from margin.services.revaluation import revaluation_tick_run
from tests.desk.conftest import DESK_PAGES, ratio
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db


def test_the_book_fixture_has_the_states_the_queue_is_about(book):
    assert ratio(book["margin_call"]) > ratio(book["warning"]) > ratio(book["healthy"])
    for state, account in book.items():
        account.refresh_from_db()
        assert account.state == state


def test_queue_lists_accounts_most_at_risk_first(client, officer, book):
    # given
    client.force_login(officer)
    # when
    response = client.get(reverse("desk:landing"))
    # then
    assert response.status_code == 200
    rows = [s.account_id for s, *_ in response.context["rows"]]
    assert rows == [book[k].pk for k in ("margin_call", "warning", "healthy")]


def test_queue_filters_by_state_and_orders_by_distance(client, officer, book):
    client.force_login(officer)
    response = client.get(reverse("desk:landing"), {"state": ["margin_call", "warning"]})
    assert {s.account_id for s, *_ in response.context["rows"]} == {
        book["margin_call"].pk,
        book["warning"].pk,
    }
    response = client.get(reverse("desk:landing"), {"order": "buffer"})
    buffers = [s.buffer for s, *_ in response.context["rows"]]
    assert buffers == sorted(buffers)


def test_queue_filters_by_notional_and_exposure(client, officer, book):
    client.force_login(officer)
    assert (
        client.get(reverse("desk:landing"), {"asset": "ETH"}).context["page"].paginator.count == 0
    )
    assert (
        client.get(reverse("desk:landing"), {"asset": "BTC"}).context["page"].paginator.count == 3
    )
    # 0.5 BTC at 85,400 is 42,700 of notional each
    big = client.get(reverse("desk:landing"), {"min_notional": "42000"})
    small = client.get(reverse("desk:landing"), {"max_notional": "42000"})
    assert big.context["page"].paginator.count == 3
    assert small.context["page"].paginator.count == 0


def test_queue_exposure_is_an_open_position_on_the_asset_or_a_holding_of_it(
    client, officer, market
):
    # given: BTC long with ETH collateral; an ETH short with a BTC position opened and closed;
    # a BTC long
    both = funded_account(usdt="20000", ETH="1", fills=[("BTCUSDT", "buy", "0.1")])
    closed_btc = funded_account(
        usdt="20000", fills=[("ETHUSDT", "sell", "1"), ("BTCUSDT", "buy", "0.1")]
    )
    funded_account(usdt="20000", fills=[("BTCUSDT", "buy", "0.1")])
    position_market_fill(
        account=closed_btc,
        instrument="BTCUSDT",
        side="sell",
        quantity=Decimal("0.1"),
        idempotency_key="close-btc",
    )
    revaluation_tick_run(now=market())
    client.force_login(officer)
    # when
    exposed = {
        symbol: {
            s.account_id
            for s, *_ in client.get(reverse("desk:landing"), {"asset": symbol}).context["rows"]
        }
        for symbol in ("BTC", "ETH", "SOL")
    }
    # then
    assert len(exposed["BTC"]) == 2 and closed_btc.pk not in exposed["BTC"]
    assert exposed["ETH"] == {both.pk, closed_btc.pk}
    assert exposed["SOL"] == set()


def test_queue_ratio_filter_takes_a_percentage_as_the_pages_show_it(client, officer, book):
    # given: the warning account's ratio as the page prints it (a percentage)
    client.force_login(officer)
    warning = (ratio(book["warning"]) * 100).quantize(Decimal("0.0001"), ROUND_FLOOR)
    healthy = (ratio(book["healthy"]) * 100).quantize(Decimal("0.0001"), ROUND_FLOOR)
    # when the filter is given the warning account's percentage, then the healthy one's
    at_warning = client.get(reverse("desk:landing"), {"min_ratio": str(warning)})
    at_healthy = client.get(reverse("desk:landing"), {"min_ratio": str(healthy)})
    # then the percentage keeps the warning and margin-call accounts only
    assert {s.account_id for s, *_ in at_warning.context["rows"]} == {
        book["margin_call"].pk,
        book["warning"].pk,
    }
    assert "Margin ratio ≥ (%)" in at_warning.content.decode()
    assert at_healthy.context["page"].paginator.count == 3
    # a ratio is stored as a fraction: the healthy account is below 1 %, so 1 keeps it out
    assert healthy < 1
    one = client.get(reverse("desk:landing"), {"min_ratio": "1"})
    assert book["healthy"].pk not in {s.account_id for s, *_ in one.context["rows"]}


def test_queue_polls_a_fragment_for_htmx(client, officer, book):
    client.force_login(officer)
    response = client.get(reverse("desk:landing"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="queue"')
    assert "<html" not in body and 'hx-trigger="every 5s"' in body


def test_queue_query_count_does_not_grow_with_rows(
    client, officer, book, django_assert_max_num_queries
):
    client.force_login(officer)
    with django_assert_max_num_queries(12):
        client.get(reverse("desk:landing"))


def test_traders_get_403_on_every_desk_page(client, make_user, book):
    client.force_login(make_user(TRADER))
    for name in DESK_PAGES:
        assert client.get(reverse(name)).status_code == 403, name
    assert client.get(reverse("desk:account", args=[book["healthy"].pk])).status_code == 403


def test_queue_shows_stress_figures_and_orders_by_stress_cover(client, officer, market):
    # given: a cash account long 0.5 BTC (the higher margin ratio, the more cover) and one
    # holding BTC as collateral while long 0.1 BTC (less leverage, yet twice the BTC exposure
    # for its balance); two minutes and a half of demo market give the stress margin its EWMA
    # history; then a tick
    cash = funded_account(usdt="50000", fills=[("BTCUSDT", "buy", "0.5")])
    coin = funded_account(usdt="100", BTC="0.3", fills=[("BTCUSDT", "buy", "0.1")])
    rng = np.random.default_rng(3)
    for _ in range(150):
        at = market()
        demo_market_step(now=at, rng=rng)
        prices_refresh(now=at)
    revaluation_tick_run(now=market())
    client.force_login(officer)
    # when
    by_ratio = client.get(reverse("desk:landing"), {"order": "ratio"})
    by_cover = client.get(reverse("desk:landing"), {"order": "stress"})
    # then
    assert [s.account_id for s, *_ in by_ratio.context["rows"]] == [cash.pk, coin.pk]
    rows = [snapshot for snapshot, *_ in by_cover.context["rows"]]
    assert [s.account_id for s in rows] == [coin.pk, cash.pk]
    content = by_cover.content.decode()
    for snapshot in rows:
        assert snapshot.stress_margin > 0
        assert snapshot.stress_cover == snapshot.margin_balance - snapshot.stress_margin
        assert f'data-testid="stress-loss">{money_text(snapshot.stress_margin)}<' in content


def test_a_liquidation_held_by_a_stale_price_is_flagged_and_filtered(client, officer, book):
    # given: the margin-call account's liquidation at the latest tick was held back
    from margin.models import Liquidation, RevaluationTick

    tick = RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE).latest("pk")
    Liquidation.objects.create(
        account=book["margin_call"], tick=tick, status=Liquidation.Status.HELD
    )
    client.force_login(officer)
    # when
    held = client.get(reverse("desk:landing"), {"stale_blocked": "true"})
    others = client.get(reverse("desk:landing"), {"stale_blocked": "false"})
    # then
    assert [s.account_id for s, *_ in held.context["rows"]] == [book["margin_call"].pk]
    assert 'data-testid="stale-blocked"' in held.content.decode()
    assert book["margin_call"].pk not in {s.account_id for s, *_ in others.context["rows"]}
    assert others.context["page"].paginator.count == 2
    assert 'data-testid="stale-blocked"' not in others.content.decode()

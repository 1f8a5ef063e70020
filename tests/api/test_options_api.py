"""Options over the API: option positions with their contract, premium, mark, IV and Greeks;
the account's net Greeks, scan risk and binding scenario; the chain per underlying and
expiry; option orders through the orders endpoint with the page's refusals; the explain of an
option's mark and of the grid. All on PostgreSQL, priced by the same engine as the pages."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.engine.options import black76
from margin.selectors.accounts import account_state_load
from tests.api.conftest import order, post
from tests.options_support import options_listed, series

pytestmark = pytest.mark.django_db

PLACES = Decimal("1e-18")  # the API's decimal places


@pytest.fixture
def frozen_now(monkeypatch):
    """One instant for every request of a test: the engine prices an option at the time to
    expiry left, which the demo's market clock runs 60 times faster than the wall."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


@pytest.fixture
def listed(reference, settings, frozen_now):
    options_listed(settings, now=frozen_now)


@pytest.fixture
def call_symbol(listed):
    return series("call", 98000, -1).symbol


@pytest.fixture
def put_symbol(listed):
    return series("put", 92000, -1).symbol


@pytest.fixture
def holder(account, trader_api, call_symbol, put_symbol):
    """The trader's account with a long call and a short put bought through the API."""
    for symbol, side in ((call_symbol, "buy"), (put_symbol, "sell")):
        booked = order(trader_api, account, symbol, side=side, quantity="0.5")
        assert booked.status_code == 201, booked.content
    return account


def test_option_positions_carry_contract_premium_mark_iv_and_greeks(
    holder, trader_api, call_symbol, put_symbol
):
    answer = trader_api.get(reverse("api:positions", args=[holder.pk])).json()
    rows = {row["instrument"]: row for row in answer["results"]}
    call, put = rows[call_symbol], rows[put_symbol]
    assert call["kind"] == put["kind"] == "option"
    state = account_state_load(holder)
    terms = state.options[call_symbol]
    option = call["option"]
    assert option["underlying"] == "BTC" and option["option_type"] == "call"
    assert Decimal(option["strike"]) == 98000
    assert Decimal(option["implied_vol"]) == terms.implied_vol
    # the mark and Greeks are Black-76's at the series' forward, vol and time to expiry
    expected = black76("call", terms.forward, terms.strike, terms.implied_vol, terms.expiry_days)
    assert Decimal(option["mark"]) == expected.value.quantize(PLACES)
    for greek in ("delta", "gamma", "vega", "theta"):
        assert Decimal(option[greek]) == getattr(expected, greek).quantize(PLACES)
    # a long paid its premium, a short received it
    assert Decimal(option["premium_paid"]) == Decimal("0.5") * Decimal(call["entry_price"]) > 0
    assert Decimal(put["option"]["premium_paid"]) < 0
    assert Decimal(put["option"]["position_delta"]) > 0  # a short put gains as the price rises
    detail = trader_api.get(reverse("api:position", args=[holder.pk, call_symbol])).json()
    assert detail["option"] == option


def test_a_perpetual_position_has_no_option_block(account, trader_api, listed):
    order(trader_api, account, "BTCUSDT")
    (row,) = trader_api.get(reverse("api:positions", args=[account.pk])).json()["results"]
    assert row["kind"] == "perpetual" and row["option"] is None


def test_the_account_detail_has_net_greeks_scan_risk_and_the_binding_scenario(holder, trader_api):
    answer = trader_api.get(reverse("api:account", args=[holder.pk])).json()
    (btc,) = answer["option_greeks"]
    figures = answer["figures"]["account"]
    assert btc["underlying"] == "BTC"
    # the serializers' 18 places of the engine's figures
    assert Decimal(btc["scan_risk"]) == Decimal(figures["scan_risk"]["BTC"]).quantize(PLACES)
    assert Decimal(btc["net_delta"]) == Decimal(figures["net_delta"]["BTC"]).quantize(PLACES)
    assert btc["binding_scenario"]["number"] == figures["worst_scenario"]["BTC"]["number"]
    assert Decimal(btc["initial_margin"]) == max(
        Decimal(btc["scan_risk"]), Decimal(btc["min_delta_risk"])
    )
    # long call, short put: long vega and short vega partly offset; the sums are the rows'
    rows = trader_api.get(reverse("api:positions", args=[holder.pk])).json()["results"]
    vega = sum(Decimal(r["quantity"]) * Decimal(r["option"]["vega"]) for r in rows if r["option"])
    assert abs(Decimal(btc["vega"]) - vega) <= PLACES


def test_an_account_without_options_has_no_net_greeks(account, trader_api):
    assert trader_api.get(reverse("api:account", args=[account.pk])).json()["option_greeks"] == []


def test_the_chain_per_underlying_and_expiry(listed, trader_api):
    url = reverse("api:option-chain")
    everything = trader_api.get(url).json()
    assert {term["underlying"] for term in everything} == {"BTC", "ETH"}
    btc = trader_api.get(url, {"underlying": "BTC"}).json()
    assert len(btc) == 3 and all(term["underlying"] == "BTC" for term in btc)
    one = trader_api.get(url, {"underlying": "BTC", "expiry": btc[1]["expiry"]}).json()
    assert [term["expiry"] for term in one] == [btc[1]["expiry"]]
    row = one[0]["strikes"][0]
    for quote in (row["call"], row["put"]):
        assert quote["bid"] < float(quote["mark"]) < quote["ask"]
        assert Decimal(quote["implied_vol"]) > 0
    assert 0 < row["call"]["delta"] < 1 and -1 < row["put"]["delta"] < 0
    assert trader_api.get(url, {"underlying": "DOGE"}).json() == []


def test_a_bad_chain_filter_is_a_400(listed, trader_api):
    response = trader_api.get(reverse("api:option-chain"), {"expiry": "next friday"})
    assert response.status_code == 400
    assert "expiry" in response.json()["errors"]


def test_an_option_order_previews_and_books_through_the_orders_endpoint(
    account, trader_api, call_symbol
):
    url = reverse("api:orders", args=[account.pk])
    body = {"instrument": call_symbol, "side": "buy", "quantity": "0.2"}
    preview = post(trader_api, url, body | {"dry_run": True}, "opt-preview")
    assert preview.status_code == 200 and preview.json()["refusal"] is None
    after = preview.json()["after"]["positions"]
    assert any(p.get("mark_price") and p["id"] for p in after)
    booked = post(trader_api, url, body, "opt-book")
    assert booked.status_code == 201, booked.content
    assert account_state_load(account).positions[call_symbol].quantity == Decimal("0.2")


def test_isolated_margin_and_leverage_are_refused_for_an_option_with_the_reason(
    holder, trader_api, call_symbol
):
    isolated = post(
        trader_api,
        reverse("api:margin-mode", args=[holder.pk, call_symbol]),
        {"mode": "isolated", "isolated_margin": "100"},
        "opt-isolated",
    )
    assert isolated.status_code == 400
    assert "cross pool only" in isolated.json()["detail"]
    leverage = post(
        trader_api,
        reverse("api:leverage", args=[holder.pk, call_symbol]),
        {"leverage": "5"},
        "opt-leverage",
    )
    assert leverage.status_code == 400
    assert "has no leverage" in leverage.json()["detail"]
    assert leverage.json()["errors"]["leverage"]


def test_the_explain_takes_an_option_and_the_grid_apart(holder, trader_api, call_symbol):
    answer = trader_api.get(reverse("api:explain", args=[holder.pk])).json()
    explain = answer["explain"]
    mark_steps = explain[f"positions.{call_symbol}.mark_price"]
    assert [step["figure"].split(" ")[0] for step in mark_steps[:5]] == ["F", "K", "T", "σ", "r"]
    assert {"d1", "d2", "N(d1)", "N(d2)"} <= {step["figure"] for step in mark_steps}
    shown = trader_api.get(reverse("api:position", args=[holder.pk, call_symbol])).json()
    assert Decimal(mark_steps[-1]["result"]).quantize(PLACES) == Decimal(shown["option"]["mark"])
    for greek in ("delta", "gamma", "vega", "theta"):
        assert explain[f"positions.{call_symbol}.{greek}"][-1]["result"]
    scan = explain["grid.BTC.scan_risk"]
    assert len(scan) == 25 and sum("(binds)" in step["figure"] for step in scan) == 1
    assert Decimal(scan[-1]["result"]) == Decimal(answer["account"]["scan_risk"]["BTC"])
    assert explain["account.maintenance_margin"][-1]["figure"] == "portfolio MM"


def test_the_desk_sees_any_accounts_net_greeks_and_another_trader_none(
    holder, officer_api, other_api
):
    desk = officer_api.get(reverse("api:desk-account", args=[holder.pk]))
    assert desk.status_code == 200
    (btc,) = desk.json()["option_greeks"]
    assert btc["underlying"] == "BTC" and Decimal(btc["scan_risk"]) > 0
    assert other_api.get(reverse("api:account", args=[holder.pk])).status_code == 404
    assert other_api.get(reverse("api:positions", args=[holder.pk])).status_code == 404

"""Depths, add-ons, concentration and the backtest over the API."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from margin.engine.demo import INSTRUMENTS
from margin.engine.liquidity import position_liquidity_addon
from margin.models import MarkPrice, Proposal
from margin.selectors.liquidity import liquidity_terms
from margin.selectors.parameters import parameters_in_force
from margin.services.proposals import proposal_create
from margin.services.recalibration import _service_account
from tests.api.conftest import funded_account, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def depth(reference):
    MarkPrice.objects.filter(instrument__symbol="BTCUSDT").update(depth_usd=Decimal(300_000_000))


def test_the_published_depths_and_charges_are_public(depth):
    answer = APIClient().get(reverse("api:liquidity"))
    assert answer.status_code == 200
    body = answer.json()
    markets = {row["symbol"]: row for row in body["markets"]}
    assert set(markets) == {"BTCUSDT"}
    market = liquidity_terms(parameters_in_force()).instruments["BTCUSDT"]
    million = Decimal(1_000_000)
    expected = position_liquidity_addon(million, million, market)
    assert Decimal(markets["BTCUSDT"]["depth_per_day"]) == 300_000_000
    assert Decimal(markets["BTCUSDT"]["example_charge"]) == pytest.approx(expected)
    assert Decimal(body["concentration_limit_share"]) == Decimal("0.25")


def test_a_trader_reads_their_add_ons_and_nobody_elses(depth, trader, trader_api, other_api):
    account = funded_account(trader, usdt="100000")
    order(trader_api, account, "BTCUSDT", quantity="2")
    url = reverse("api:account-liquidity", args=[account.pk])
    answer = trader_api.get(url)
    assert answer.status_code == 200
    (position,) = answer.json()["positions"]
    assert position["instrument"] == "BTCUSDT" and Decimal(position["liquidity_addon"]) > 0
    assert Decimal(position["owner_quantity"]) == 2
    # and the bracket of what the owner holds over all their accounts (here this account alone)
    notional = Decimal(position["notional"])
    _, table = INSTRUMENTS["BTCUSDT"]
    assert position["bracket"] == table.bracket_for(notional)[0] == 2
    assert Decimal(position["owner_share"]) == 1 and Decimal(position["owner_notional"]) == notional
    assert answer.json()["reduce_only_instruments"] == []
    assert other_api.get(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)


def test_the_backtest_is_404_until_a_recalibration_ran_then_public(reference):
    url = reverse("api:backtest")
    assert APIClient().get(url).status_code == 404
    row = {"rate": "0.004", "observations": 100, "exceedances": 7, "coverage": 0.93}
    impact = {
        "backtest": [
            {
                "instrument": "BTCUSDT",
                "current": row | {"kupiec_p_value": 0.001, "passes": False},
                "proposed": row | {"exceedances": 1, "coverage": 0.99, "passes": True},
            }
        ],
        "policy": {"confidence": 0.99, "close_out_horizon_s": 900.0},
    }
    proposal = proposal_create(
        kind=Proposal.Kind.PARAMETER_CHANGE,
        payload={"brackets": {}, "haircuts": {}},
        reason="test",
        proposer=_service_account(),
        impact=impact,
    )
    body = APIClient().get(url).json()
    assert body["proposal"] == proposal.pk
    (answer,) = body["rows"]
    assert answer["current"]["exceedances"] == 7 and not answer["current"]["passes"]
    assert answer["proposed"]["passes"]


def test_the_events_library_is_public(reference):
    body = APIClient().get(reverse("api:stress-events")).json()
    names = [event["name"] for event in body]
    assert names == ["march_2020", "may_2021", "may_2022", "november_2022", "october_2025"]
    march = body[0]
    assert march["closes"]["BTC"][:2] == [7911.430176, 4970.788086]
    assert march["worst_move"] == pytest.approx(110.605873 / 194.868530 - 1)
    # the de-peg's intraday step: a point without a cited BTC price is null, wBETH a fraction
    # of ETH there
    october = body[-1]
    assert october["dates"][1] == "2025-10-10T21:40Z" and october["closes"]["BTC"][1] is None
    assert october["depegs"]["WBETH"] == {
        "peg": "ETH",
        "fractions": {"2025-10-10T21:40Z": pytest.approx(430 / 3800)},
    }

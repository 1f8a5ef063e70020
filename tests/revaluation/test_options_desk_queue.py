"""The desk over a book holding options (PostgreSQL): the tick keeps each account's scan risk
and binding scenario on its snapshot and the API's queue carries them; the book's exposure by
Greek per underlying (page and API), refused to a trader. (The queue page's scan risk and the
account review's risk matrix: tests/desk/test_options_review.py.)"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import RISK_MANAGER, RISK_OFFICER
from margin.engine.grid_summary import scenario_label
from margin.engine.options import GRID
from margin.selectors.accounts import account_state_load
from margin.selectors.market import latest_snapshot
from margin.services.revaluation import revaluation_tick_run
from tests.api.conftest import client_for
from tests.options_support import series
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticked(options_market, monkeypatch):
    """A short put and long calls on BTC beside a perpetual, and a linear-only account, after
    one tick; `timezone.now` held at the tick so the reference sees the same days to expiry."""
    put, call = series("put", 96000, 2), series("call", 100000, 1)
    holder = funded_account(
        usdt="40000",
        fills=[(put.symbol, "sell", "1"), (call.symbol, "buy", "2"), ("BTCUSDT", "buy", "0.1")],
    )
    linear_only = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.2")])
    tick_at = options_market + timedelta(seconds=1)
    revaluation_tick_run(now=tick_at)
    monkeypatch.setattr(timezone, "now", lambda: tick_at)
    return holder, linear_only


def test_the_tick_keeps_the_grids_scan_risk_and_binding_scenario(ticked):
    # given
    holder, linear_only = ticked
    # when
    snapshot = latest_snapshot(holder)
    # then: as the Decimal reference's grid says
    (btc,) = account_state_load(holder).quote().portfolio.underlyings
    assert btc.scan_risk > 0
    assert float(snapshot.scan_risk) == pytest.approx(float(btc.scan_risk), rel=1e-6)
    assert snapshot.binding_scenario == scenario_label("BTC", GRID[btc.worst_scenario])
    plain = latest_snapshot(linear_only)
    assert (plain.scan_risk, plain.binding_scenario) == (0, "")


def test_the_api_queue_carries_the_ticks_scan_risk_and_binding_scenario(make_user, ticked):
    # given
    holder, linear_only = ticked
    snapshot = latest_snapshot(holder)
    api = client_for(make_user(RISK_OFFICER))
    # when
    rows = {r["account_id"]: r for r in api.get(reverse("api:desk-queue")).json()["results"]}
    # then
    assert Decimal(rows[holder.pk]["scan_risk"]) == snapshot.scan_risk > 0
    assert rows[holder.pk]["binding_scenario"] == snapshot.binding_scenario
    assert (
        Decimal(rows[linear_only.pk]["scan_risk"]),
        rows[linear_only.pk]["binding_scenario"],
    ) == (
        0,
        "",
    )


def _reference_greeks(*accounts) -> dict[str, float]:
    """Σ side × quantity × each Greek of the accounts' options by the Decimal reference, and
    their net delta with the perpetuals' quantities."""
    totals = {"net_delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
    for account in accounts:
        state = account_state_load(account)
        for row in state.quote().options:
            signed = float(row.side * row.quantity)
            totals["net_delta"] += float(row.position_delta)
            totals["gamma"] += signed * float(row.gamma)
            totals["vega"] += signed * float(row.vega)
            totals["theta"] += signed * float(row.theta)
        totals["net_delta"] += sum(
            float(p.side * p.quantity) for p in state.engine_input().positions
        )
    return totals


def test_the_books_greeks_per_underlying_are_the_references_summed(client, make_user, ticked):
    # given
    holder, linear_only = ticked
    expected = _reference_greeks(holder, linear_only)
    api = client_for(make_user(RISK_MANAGER))
    # when
    (row,) = api.get(reverse("api:desk-greeks")).json()
    client.force_login(make_user(RISK_OFFICER))
    page = client.get(reverse("desk:greeks"))
    # then
    assert row["underlying"] == "BTC" and row["holders"] == 1
    assert row["linear_delta"] == pytest.approx(0.3)
    for greek, value in expected.items():
        assert row[greek] == pytest.approx(value, rel=1e-9, abs=1e-12), greek
    assert page.status_code == 200
    assert 'data-underlying="BTC"' in page.content.decode()


def test_a_trader_is_refused_the_books_greeks(client, ticked):
    holder, _ = ticked
    assert client_for(holder.owner).get(reverse("api:desk-greeks")).status_code == 403
    client.force_login(holder.owner)
    assert client.get(reverse("desk:greeks")).status_code in (302, 403)

"""The desk sees options (PostgreSQL): the queue shows an option holder's scan risk and the
scenario that sets it, the account review its risk matrix and its liquidation plan."""

import pytest
from django.urls import reverse

from margin.engine.grid_summary import scenario_label
from margin.engine.options import GRID
from margin.models import MarginSnapshot
from margin.selectors.accounts import account_state_load
from margin.services.revaluation import revaluation_tick_run
from margin.templatetags.numbers import money
from tests.options_support import options_listed, series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder(market, settings):
    options_listed(settings, now=market())
    put = series("put", 94000, -1)
    account = funded_account(usdt="30000", fills=[(put.symbol, "sell", "1")])
    funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.1")])
    revaluation_tick_run(now=market())
    return account


def test_the_queue_shows_the_scan_risk_and_the_binding_scenario(client, officer, holder):
    # given: the tick's grid for the holder (the reference's scan risk at that tick:
    # tests/revaluation/test_options_desk_queue.py holds the snapshot to it)
    snapshot = MarginSnapshot.objects.filter(account=holder).latest("tick_id")
    (risk,) = account_state_load(holder).quote().portfolio.underlyings
    assert snapshot.scan_risk > 0
    assert snapshot.binding_scenario == scenario_label("BTC", GRID[risk.worst_scenario])
    # when
    client.force_login(officer)
    page = client.get(reverse("desk:landing")).content.decode()
    # then: the queue shows the tick's figures, as every other column of its row
    row = page.split(f'<tr data-account="{holder.pk}">')[1].split("</tr>")[0]
    cell = row.split('data-testid="scan-risk">')[1].split("</td>")[0]
    assert cell == f"{money(snapshot.scan_risk)} · {snapshot.binding_scenario}"
    others = page.split('data-testid="scan-risk">')[1:]
    assert sum("—" in cell.split("</td>")[0] for cell in others) == 1  # the perpetual's


def test_the_account_review_shows_the_risk_matrix(client, officer, holder):
    client.force_login(officer)
    page = client.get(reverse("desk:account", args=[holder.pk])).content.decode()
    assert 'id="risk-matrix"' in page
    assert page.count('data-testid="worst-scenario"') == 1


def test_the_account_review_shows_the_liquidation_plan_with_its_option_steps(
    client, officer, market, settings
):
    # given: long 0.5 BTCUSDT and short a put, BTC down from 95,000 to 80,000: past the line
    # (tests/revaluation/test_option_liquidation_order.py books this very plan)
    options_listed(settings, now=market())
    put = series("put", 94000, 1)
    account = funded_account(
        usdt="26000", fills=[("BTCUSDT", "buy", "0.5"), (put.symbol, "sell", "1")]
    )
    market_prices(at=market(), BTC=80000, USDT=1)
    revaluation_tick_run(now=market())
    # when
    client.force_login(officer)
    page = client.get(reverse("desk:account", args=[account.pk])).content.decode()
    # then: the future first, then the put, each row named by its instrument
    table = page.split('id="liquidation-plan"')[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 2
    assert "<td>future</td><td>BTCUSDT</td>" in rows[0]
    assert f"<td>option</td><td>{put.symbol}</td>" in rows[1]
    assert "Order: futures first, then options." in page

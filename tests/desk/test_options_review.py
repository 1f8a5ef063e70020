"""The desk sees options (PostgreSQL): the queue shows an option holder's scan risk and the
scenario that sets it, the account review its risk matrix."""

import re

import pytest
from django.urls import reverse

from margin.engine.options import GRID
from margin.models import Instrument
from margin.selectors.accounts import account_state_load
from margin.services.options_listing import options_listing_ensure
from margin.services.revaluation import revaluation_tick_run
from margin.templatetags.numbers import percent
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder(market, settings):
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    settings.OPTIONS_LISTING_ENABLED = True
    settings.OPTION_TERMS_HOURS = [12.0, 48.0, 168.0]
    now = market()
    options_listing_ensure(now=now)
    put = Instrument.objects.filter(
        kind="option", underlying__symbol="BTC", option_type="put", strike=94000
    ).order_by("-expiry")[0]
    account = funded_account(usdt="30000", fills=[(put.symbol, "sell", "1")])
    funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.1")])
    revaluation_tick_run(now=market())
    return account


def test_the_queue_shows_the_scan_risk_and_the_binding_scenario(client, officer, holder):
    client.force_login(officer)
    page = client.get(reverse("desk:landing")).content.decode()
    (risk,) = account_state_load(holder).quote().portfolio.underlyings
    worst = GRID[risk.worst_scenario]
    row = page.split(f'<tr data-account="{holder.pk}">')[1].split("</tr>")[0]
    # the scan risk of the page's read (a moment before this one: time to expiry moved on)
    shown = re.search(r"BTC ([\d,.]+) · spot (\S+), vol (\S+) ×", row)
    assert float(shown[1].replace(",", "")) == pytest.approx(float(risk.scan_risk), rel=1e-3)
    assert (shown[2], shown[3]) == (percent(worst.spot_shock), percent(worst.vol_shock))
    others = page.split('data-testid="scan-risk">')[1:]
    assert sum("—" in cell.split("</td>")[0] for cell in others) == 1  # the perpetual's


def test_the_account_review_shows_the_risk_matrix(client, officer, holder):
    client.force_login(officer)
    page = client.get(reverse("desk:account", args=[holder.pk])).content.decode()
    assert 'id="risk-matrix"' in page
    assert page.count('data-testid="worst-scenario"') == 1

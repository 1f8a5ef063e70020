from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import RISK_MANAGER, RISK_OFFICER
from margin.services.reference import reference_data_ensure
from margin.services.revaluation import revaluation_tick_run
from tests.revaluation.factories import funded_account, market_prices
from tests.second_factor import submit_login

OPENING = {"BTC": 95000, "ETH": 3400, "SOL": 230, "USDT": 1, "USDC": 1}

# The desk's pages without an object in their URL.
DESK_PAGES = (
    "desk:landing",
    "desk:cases",
    "desk:proposals",
    "desk:audit",
    "desk:parameters",
    "desk:stress",
    "desk:cascade",
    "desk:scenarios",
    "desk:heatmap",
    "desk:prices",
)


@pytest.fixture
def clock():
    """A test clock that only moves forward, one second per call (the price guard and the
    tick dispatcher both want time to pass)."""
    start = timezone.now()
    seconds = iter(range(1, 10_000))
    return lambda: start + timedelta(seconds=next(seconds))


@pytest.fixture
def market(db, clock):
    reference_data_ensure()
    market_prices(at=clock(), **OPENING)
    return clock


@pytest.fixture
def officer(make_user):
    return make_user(RISK_OFFICER, username="officer1")


@pytest.fixture
def officer2(make_user):
    return make_user(RISK_OFFICER, username="officer2")


@pytest.fixture
def manager(make_user):
    return make_user(RISK_MANAGER, username="manager1")


def move_btc(clock, *prices) -> None:
    """BTC (and its instruments) printed at each price in turn, within the price guard."""
    for price in prices:
        market_prices(at=clock(), **{**OPENING, "BTC": price})


@pytest.fixture
def book(market):
    """Three accounts long BTC on 10× leverage, and a BTC crash that leaves the most leveraged
    one in margin call, the next one in warning, and a well-funded one healthy; then a tick."""
    accounts = {
        "margin_call": funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.5")]),
        "warning": funded_account(usdt="5150", fills=[("BTCUSDT", "buy", "0.5")]),
        "healthy": funded_account(usdt="40000", fills=[("BTCUSDT", "buy", "0.5")]),
    }
    move_btc(market, 90000, 85400)
    revaluation_tick_run(now=market())
    return accounts


def ratio(account) -> Decimal:
    return account.snapshots.order_by("-tick").first().margin_ratio


@pytest.fixture
def csp_violations():
    return []


@pytest.fixture
def sign_in(browser, live_server, password, csp_violations):
    """A fresh browser context logged in as `user` (one per desk member); CSP violations of
    any page are collected."""
    contexts = []

    def open_as(user):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda m: csp_violations.append(m.text) if "Content Security" in m.text else None,
        )
        page.goto(f"{live_server.url}/login/")
        submit_login(page, user, password)
        page.wait_for_url("**/desk/")
        return page

    yield open_as
    for context in contexts:
        context.close()

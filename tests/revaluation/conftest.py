from datetime import timedelta

import pytest
from django.utils import timezone

from margin.services.options_listing import options_listing_ensure
from margin.services.reference import reference_data_ensure
from tests.revaluation.factories import market_prices


@pytest.fixture
def reference(db):
    """The demo assets, instruments and risk parameters (version 1)."""
    return reference_data_ensure()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def later(now):
    def at(seconds: float):
        return now + timedelta(seconds=seconds)

    return at


@pytest.fixture
def market(reference, now):
    """Every venue quoting the demo assets at their opening prices, refreshed at `now`."""
    market_prices(at=now, BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    return now


@pytest.fixture
def options_market(market, settings):
    """The demo market's speed (60) with options listed on BTC and ETH at `market`'s prices:
    terms of 12, 48 and 168 market hours (as many real minutes)."""
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    settings.OPTIONS_LISTING_ENABLED = True
    settings.OPTION_TERMS_HOURS = [12.0, 48.0, 168.0]
    options_listing_ensure(now=market)
    return market

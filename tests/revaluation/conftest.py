from datetime import timedelta

import pytest
from django.utils import timezone

from margin.services.reference import reference_data_ensure
from tests.options_support import options_listed
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
    options_listed(settings, now=market)
    return market

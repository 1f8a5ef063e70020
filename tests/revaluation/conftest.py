from datetime import timedelta

import pytest
from django.utils import timezone

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

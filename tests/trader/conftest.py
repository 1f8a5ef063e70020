import pytest

from accounts.roles import TRADER
from margin.services.reference import reference_data_ensure
from tests.revaluation.factories import funded_account


@pytest.fixture
def reference(db):
    return reference_data_ensure()


@pytest.fixture
def trader(make_user):
    return make_user(TRADER)


@pytest.fixture
def account(reference, trader):
    """10,000 USDT and 0.5 BTC of collateral, long 0.1 BTCUSDT at the mark."""
    return funded_account(user=trader, usdt="10000", BTC="0.5", fills=[("BTCUSDT", "buy", "0.1")])


@pytest.fixture
def other_account(reference, make_user):
    """Another trader's account, with a position."""
    return funded_account(user=make_user(TRADER), usdt="5000", fills=[("ETHUSDT", "sell", "1")])


@pytest.fixture
def trader_client(client, trader):
    client.force_login(trader)
    return client


@pytest.fixture
def htmx(trader_client):
    """The trader's client, asking as htmx does (fragments, not pages)."""
    trader_client.defaults["HTTP_HX_REQUEST"] = "true"
    return trader_client

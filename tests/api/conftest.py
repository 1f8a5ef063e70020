from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.authentication import api_token_create
from accounts.roles import RISK_MANAGER, RISK_OFFICER, TRADER
from margin.services.collateral import collateral_deposit
from margin.services.ledger import margin_account_open
from margin.services.reference import reference_data_ensure


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # Throttle counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


def client_for(user, *, name: str = "test") -> APIClient:
    """An API client authenticated the way a bot is: a Bearer token."""
    _, token = api_token_create(user=user, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post(client: APIClient, url: str, body: dict, key: str):
    """A JSON POST with its Idempotency-Key."""
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def order(
    client: APIClient,
    account,
    instrument: str,
    *,
    side: str = "buy",
    quantity: str = "0.01",
    key: str | None = None,
):
    """A fill at the mark through the API (the setup of a test that needs a position)."""
    return post(
        client,
        reverse("api:orders", args=[account.pk]),
        {"instrument": instrument, "side": side, "quantity": quantity},
        key or f"{account.pk}-{instrument}",
    )


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def trader(make_user):
    return make_user(TRADER)


@pytest.fixture
def other_trader(make_user):
    return make_user(TRADER)


@pytest.fixture
def officer(make_user):
    return make_user(RISK_OFFICER)


@pytest.fixture
def manager(make_user):
    return make_user(RISK_MANAGER)


@pytest.fixture
def trader_api(trader):
    return client_for(trader)


@pytest.fixture
def other_api(other_trader):
    return client_for(other_trader)


@pytest.fixture
def officer_api(officer):
    return client_for(officer)


@pytest.fixture
def manager_api(manager):
    return client_for(manager)


@pytest.fixture
def reference(db):
    """The demo assets, instruments, credit tiers, parameters and prices."""
    return reference_data_ensure()


def funded_account(owner, *, usdt: str = "10000", name: str = "Main"):
    account = margin_account_open(owner=owner, name=name)
    collateral_deposit(
        account=account,
        asset="USDT",
        amount=Decimal(usdt),
        idempotency_key=f"seed-{account.pk}",
        actor=owner,
    )
    return account


@pytest.fixture
def account(reference, trader):
    return funded_account(trader)


@pytest.fixture
def other_account(reference, other_trader):
    return funded_account(other_trader)

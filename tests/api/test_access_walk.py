"""Every operation of the schema has its access test, found by walking the schema itself: a
new endpoint without one fails here until it is classified.

- desk operations refuse a trader (403) and answer 404 for a missing object;
- trader operations on an object answer 404 for another user's object, byte for byte like a
  missing one, and book nothing;
- every operation but the public ones refuses an anonymous caller (401).
"""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from margin.models import Journal, MarginAccount, Position
from tests.api.conftest import client_for, funded_account

pytestmark = pytest.mark.django_db

# Published to anyone, as /disclosure/ is: the parameters, the market depths, the latest
# recalibration's backtest (404 until one has run) and the library of stress events.
PUBLIC = {
    ("GET", "/api/v1/parameters/"),
    ("GET", "/api/v1/liquidity/"),
    ("GET", "/api/v1/recalibration/backtest/"),
    ("GET", "/api/v1/stress-events/"),
}
# Operations on no object of anyone's: what they read or compute is the caller's own.
CALLERS_OWN = {
    ("GET", "/api/v1/me/"),
    ("POST", "/api/v1/quote/"),
    ("GET", "/api/v1/accounts/"),
}
# Market data every signed-in user reads alike (no account in it): prices, the options chain.
MARKET_DATA = {("GET", "/api/v1/prices/"), ("GET", "/api/v1/options/chain/")}
MISSING_ID = 987_654_321


def operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    )


OPERATIONS = operations()
DESK = [op for op in OPERATIONS if op[1].startswith("/api/v1/desk/")]
OBJECT_SCOPED = [op for op in OPERATIONS if op not in DESK and op not in PUBLIC and "{" in op[1]]


def fill(path: str, **values) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def call(client: APIClient, method: str, path: str, key: str):
    if method == "GET":
        return client.get(path)
    return client.generic(
        method, path, data="{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_every_operation_is_classified_for_an_access_test():
    unclassified = [
        op
        for op in OPERATIONS
        if op not in DESK
        and op not in OBJECT_SCOPED
        and op not in PUBLIC | CALLERS_OWN | MARKET_DATA
    ]
    assert unclassified == []
    assert len(DESK) >= 20 and len(OBJECT_SCOPED) >= 10


@pytest.mark.parametrize(("method", "path"), DESK)
def test_every_desk_operation_refuses_a_trader(trader_api, method, path):
    response = call(trader_api, method, fill(path, **dict.fromkeys(_params(path), 1)), "k-403")
    assert response.status_code == 403
    assert response.json()["status"] == 403


@pytest.mark.parametrize(("method", "path"), [op for op in DESK if "{" in op[1]])
def test_every_desk_object_operation_answers_404_for_a_missing_object(manager_api, method, path):
    response = call(
        manager_api, method, fill(path, **dict.fromkeys(_params(path), MISSING_ID)), "k"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), OBJECT_SCOPED)
def test_another_users_object_is_a_404_like_a_missing_one(
    reference, trader, other_trader, method, path
):
    # given: the other trader's account holds a position
    theirs = funded_account(other_trader)
    client_for(other_trader).post(
        f"/api/v1/accounts/{theirs.pk}/orders/",
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "0.01"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="their-order",
    )
    assert Position.objects.filter(margin_account=theirs).exists()
    journals = Journal.objects.count()
    me = client_for(trader)
    # when
    foreign = call(me, method, fill(path, account_id=theirs.pk, instrument="BTCUSDT"), "k-a")
    missing = call(me, method, fill(path, account_id=MISSING_ID, instrument="BTCUSDT"), "k-b")
    # then
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    assert Journal.objects.count() == journals
    assert not MarginAccount.objects.filter(owner=trader).exists()


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if op not in PUBLIC])
def test_every_private_operation_refuses_an_anonymous_caller(anonymous, method, path):
    response = call(anonymous, method, fill(path, **dict.fromkeys(_params(path), 1)), "k")
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_the_public_operations_answer_an_anonymous_caller(anonymous, reference, method, path):
    # an answer, not a refusal: 200, or 404 for a backtest no recalibration has made yet
    assert call(anonymous, method, path, "k").status_code in (200, 404)


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)

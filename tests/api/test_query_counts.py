"""Lists answer in a fixed number of queries whatever their length (no N+1)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.services.revaluation import revaluation_tick_run
from tests.api.conftest import funded_account, order

pytestmark = pytest.mark.django_db

ROWS = 6
# Token, page, related rows, annotations: 3 to 5 measured (the user's permissions are cached
# from their first request on: accounts.permissions); one per row would pass 5 at once.
MAX_QUERIES = 5


@pytest.fixture
def busy_trader(trader, trader_api, reference):
    accounts = [funded_account(trader, name=f"Book {n}") for n in range(ROWS)]
    for account in accounts:
        for instrument in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            order(trader_api, account, instrument)
    revaluation_tick_run(now=timezone.now())
    return accounts


@pytest.mark.parametrize("name", ["api:accounts", "api:positions", "api:history"])
def test_trader_lists_need_a_fixed_number_of_queries(
    trader_api, busy_trader, django_assert_max_num_queries, name
):
    url = reverse(name) if name == "api:accounts" else reverse(name, args=[busy_trader[0].pk])
    with django_assert_max_num_queries(MAX_QUERIES):
        response = trader_api.get(url)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 3


def test_the_desk_queue_needs_a_fixed_number_of_queries(
    officer_api, busy_trader, django_assert_max_num_queries
):
    officer_api.get(reverse("api:desk-queue"))  # the officer's permissions, read once
    with django_assert_max_num_queries(MAX_QUERIES):
        response = officer_api.get(reverse("api:desk-queue"))
    assert len(response.json()["results"]) == ROWS

import threading

import pytest
from django.db import connection
from django.urls import reverse

from margin.models import Journal, JournalKind
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 5
RACERS = 4


def race(url: str, body: dict, key: str, clients) -> list:
    """POST the same request from several threads at once, each on its own connection."""
    start = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def run(n: int, client) -> None:
        try:
            start.wait()
            answers[n] = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_concurrent_requests_with_one_key_book_once_and_answer_alike(trader, account):
    # given: several bots of one user, each with its own token
    clients = [client_for(trader, name=f"bot {n}") for n in range(RACERS)]
    url = reverse("api:deposits", args=[account.pk])
    for round_number in range(ROUNDS):
        # when
        answers = race(url, {"asset": "USDT", "amount": "7"}, f"race-{round_number}", clients)
        # then
        assert [answer.status_code for answer in answers] == [201] * RACERS
        assert len({answer.content for answer in answers}) == 1
        assert sum(answer.has_header("Idempotent-Replayed") for answer in answers) == RACERS - 1
    booked = Journal.objects.filter(margin_account=account, kind=JournalKind.DEPOSIT)
    assert booked.count() == 1 + ROUNDS  # the seed deposit and one per key

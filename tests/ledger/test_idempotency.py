import threading
from decimal import Decimal

import pytest
from django.db import connection

from margin.models import IdempotencyRecord, Journal
from margin.services.collateral import collateral_deposit, collateral_withdraw
from margin.services.idempotency import IdempotencyConflict
from margin.services.reference import reference_data_ensure
from tests.factories import MarginAccountFactory
from tests.ledger.support import balance, fund, new_key


def test_the_same_key_and_request_replays_the_first_result(account):
    # given
    key = new_key()
    first = collateral_deposit(account=account, asset="USDT", amount="100", idempotency_key=key)
    # when the client retries, writing the amount differently
    again = collateral_deposit(account=account, asset="USDT", amount="100.00", idempotency_key=key)
    # then
    assert again.replayed and not first.replayed
    assert (again.journal_id, again.details) == (first.journal_id, first.details)
    assert balance(account) == Decimal("100")
    assert Journal.objects.count() == 1


def test_the_same_key_for_another_request_is_a_conflict_and_books_nothing(account):
    key = new_key()
    collateral_deposit(account=account, asset="USDT", amount="100", idempotency_key=key)
    with pytest.raises(IdempotencyConflict, match="different request"):
        collateral_deposit(account=account, asset="USDT", amount="101", idempotency_key=key)
    with pytest.raises(IdempotencyConflict):
        collateral_withdraw(account=account, asset="USDT", amount="100", idempotency_key=key)
    assert balance(account) == Decimal("100")


def test_a_refused_request_leaves_its_key_free(account):
    key = new_key()
    with pytest.raises(Exception, match="holds 0 USDT"):
        collateral_withdraw(account=account, asset="USDT", amount="5", idempotency_key=key)
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    fund(account, "USDT", "10")
    collateral_withdraw(account=account, asset="USDT", amount="5", idempotency_key=key)
    assert balance(account) == Decimal("5")


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_key_book_once():
    # given one account and 12 threads, each with its own connection, sending the same request
    reference_data_ensure()
    account = MarginAccountFactory()
    key, threads, barrier = new_key(), 12, threading.Barrier(12)
    receipts, errors = [], []

    def send() -> None:
        try:
            barrier.wait()
            receipts.append(
                collateral_deposit(account=account, asset="BTC", amount="0.7", idempotency_key=key)
            )
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # then one booking, eleven replays of it
    assert errors == []
    assert len({r.journal_id for r in receipts}) == 1
    assert sorted(r.replayed for r in receipts) == [False] + [True] * (threads - 1)
    assert balance(account, asset="BTC") == Decimal("0.7")
    assert Journal.objects.count() == 1

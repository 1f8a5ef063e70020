"""A write that PostgreSQL picks as a deadlock's victim is rolled back whole and run again
(`margin.services.writes.DEADLOCK_ATTEMPTS`): the trader gets the booking, once, not a 500."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from margin.models import Journal, LedgerAccount, LedgerAccountKind, MarginAccount
from margin.selectors.ledger import ledger_differences
from margin.services.collateral import collateral_deposit
from margin.services.reference import reference_data_ensure
from margin.services.writes import DEADLOCK_ATTEMPTS
from tests.factories import MarginAccountFactory
from tests.ledger.support import balance, fund, new_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deposit_that_loses_a_deadlock_is_run_again_and_booked_once(caplog):
    # given: a funded account, and another transaction that holds the account's USDT wallet row
    # and will then ask for the account's own row, the reverse of the services' lock order
    reference_data_ensure()
    account = MarginAccountFactory()
    fund(account, "USDT", "1000")
    wallet = LedgerAccount.objects.get(
        margin_account=account, kind=LedgerAccountKind.WALLET, asset__symbol="USDT"
    )
    journals_before = Journal.objects.count()
    holding, done = threading.Event(), threading.Event()

    def out_of_order() -> None:
        try:
            with transaction.atomic():
                LedgerAccount.objects.select_for_update().get(pk=wallet.pk)
                holding.set()
                time.sleep(0.3)  # the deposit now holds the account row and waits for the wallet
                MarginAccount.objects.select_for_update().get(pk=account.pk)
        finally:
            connection.close()
            done.set()

    other = threading.Thread(target=out_of_order)
    other.start()
    assert holding.wait(10)
    # when: the deposit locks the account row, then waits on the wallet: a cycle, and the
    # deposit, waiting longest, is the one PostgreSQL's deadlock check aborts
    receipt = collateral_deposit(
        account=account, asset="USDT", amount=Decimal("250"), idempotency_key=new_key()
    )
    other.join(10)
    # then: booked once, after one lost attempt
    assert done.is_set()
    assert receipt.journal_id is not None and not receipt.replayed
    assert balance(account) == Decimal("1250")
    assert Journal.objects.count() == journals_before + 1
    assert ledger_differences().clean
    retried = [r.message for r in caplog.records if "deadlock's victim" in r.message]
    # at least the first attempt lost; on a loaded machine a retry can meet the other
    # transaction before it has committed and lose once more, within the attempts allowed
    assert retried[0] == (
        f"collateral_deposit on account {account.pk} was a deadlock's victim"
        " (attempt 1 of 3): run again"
    )
    assert len(retried) < DEADLOCK_ATTEMPTS

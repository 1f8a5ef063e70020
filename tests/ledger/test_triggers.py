from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from margin.models import Asset, Entry, Journal, JournalKind, LedgerAccount, LedgerAccountKind
from margin.services.ledger import Line, journal_post
from margin.services.reference import reference_data_ensure
from tests.ledger.support import fund


def _house(kind: str) -> LedgerAccount:
    return LedgerAccount.objects.get(margin_account__isnull=True, kind=kind, asset__symbol="USDT")


def test_a_direct_unbalanced_insert_is_refused_by_the_database(reference):
    # given a journal with a single entry written straight to the table
    external = _house(LedgerAccountKind.EXTERNAL)
    journal = Journal.objects.create(kind=JournalKind.DEPOSIT)
    # when / then the balance trigger refuses it
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        Entry.objects.create(
            journal=journal, ledger_account=external, asset=external.asset, amount=Decimal("5")
        )
    assert not Entry.objects.filter(journal=journal).exists()


@pytest.mark.django_db(transaction=True)
def test_the_balance_check_is_deferred_to_commit():
    # given reference data, outside any test transaction
    reference_data_ensure()
    external, fees = _house(LedgerAccountKind.EXTERNAL), _house(LedgerAccountKind.FEES)
    # when two halves of a journal are inserted by separate statements, it commits
    with transaction.atomic():
        journal = Journal.objects.create(kind=JournalKind.INSURANCE)
        Entry.objects.create(
            journal=journal,
            ledger_account=external,
            asset_id=external.asset_id,
            amount=Decimal("-3"),
        )
        Entry.objects.create(
            journal=journal, ledger_account=fees, asset_id=fees.asset_id, amount=Decimal("3")
        )
    # then; and a transaction leaving one half alone fails at its commit, leaving nothing
    assert Entry.objects.filter(journal=journal).count() == 2
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        lonely = Journal.objects.create(kind=JournalKind.INSURANCE)
        Entry.objects.create(
            journal=lonely, ledger_account=fees, asset_id=fees.asset_id, amount=Decimal("1")
        )
    assert not Journal.objects.filter(kind=JournalKind.INSURANCE).exclude(pk=journal.pk).exists()


def test_entries_cannot_be_updated_or_deleted(account):
    # given a deposit
    fund(account, "USDT", "100")
    entry = Entry.objects.filter(ledger_account__margin_account=account).get()
    # when / then
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).update(amount=Decimal("1000"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).delete()
    assert Entry.objects.get(pk=entry.pk).amount == Decimal("100")


def test_the_posting_service_refuses_an_unbalanced_journal_before_the_database(reference):
    # given
    external, fees = _house(LedgerAccountKind.EXTERNAL), _house(LedgerAccountKind.FEES)
    # when / then
    with pytest.raises(ValueError, match="does not balance"):
        journal_post(
            kind=JournalKind.INSURANCE,
            lines=[
                Line(external.pk, external.asset_id, Decimal("-2")),
                Line(fees.pk, fees.asset_id, Decimal("1")),
            ],
        )
    assert not Journal.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_one_statement_of_many_journals_is_checked_at_commit_and_leaves_no_queue():
    # given reference data, outside any test transaction
    reference_data_ensure()
    external, fees = _house(LedgerAccountKind.EXTERNAL), _house(LedgerAccountKind.FEES)

    def lines(journal, amount):
        return [
            Entry(
                journal=journal, ledger_account=external, asset_id=external.asset_id, amount=-amount
            ),
            Entry(journal=journal, ledger_account=fees, asset_id=fees.asset_id, amount=amount),
        ]

    # when 200 balanced journals are written by one INSERT, it commits
    with transaction.atomic():
        journals = Journal.objects.bulk_create(
            Journal(kind=JournalKind.INSURANCE) for _ in range(200)
        )
        Entry.objects.bulk_create(e for j in journals for e in lines(j, Decimal("2")))
    assert Entry.objects.filter(journal__in=journals).count() == 400
    # then one unbalanced journal among 200 fails the whole transaction, naming it
    with (
        pytest.raises(IntegrityError, match="does not balance") as refused,
        transaction.atomic(),
    ):
        more = Journal.objects.bulk_create(Journal(kind=JournalKind.INSURANCE) for _ in range(200))
        entries = [e for j in more for e in lines(j, Decimal("2"))]
        entries[301].amount = Decimal("2.5")  # journal 150's second line
        Entry.objects.bulk_create(entries)
    assert f"journal_id {more[150].pk} " in str(refused.value)
    assert Journal.objects.filter(kind=JournalKind.INSURANCE).count() == 200
    # and the per-transaction queues of journals to check are empty once no transaction is open
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM margin_entry_unchecked), "
            "(SELECT count(*) FROM margin_entry_check)"
        )
        assert cursor.fetchone() == (0, 0)


def test_an_entry_in_another_asset_than_its_ledger_account_is_refused(reference):
    # given a balanced journal whose two lines are in BTC, on USDT house accounts
    external, fees = _house(LedgerAccountKind.EXTERNAL), _house(LedgerAccountKind.FEES)
    btc = Asset.objects.get(symbol="BTC")
    journal = Journal.objects.create(kind=JournalKind.INSURANCE)
    # when / then the one foreign key on (ledger account, asset) refuses them
    with pytest.raises(IntegrityError, match="entry_ledger_account_asset"), transaction.atomic():
        Entry.objects.bulk_create(
            [
                Entry(journal=journal, ledger_account=external, asset=btc, amount=Decimal("-1")),
                Entry(journal=journal, ledger_account=fees, asset=btc, amount=Decimal("1")),
            ]
        )
    # and in the ledger account's own asset the same journal is taken
    Entry.objects.bulk_create(
        [
            Entry(
                journal=journal, ledger_account=external, asset=external.asset, amount=Decimal("-1")
            ),
            Entry(journal=journal, ledger_account=fees, asset=fees.asset, amount=Decimal("1")),
        ]
    )
    assert Entry.objects.filter(journal=journal).count() == 2

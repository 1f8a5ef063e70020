"""Opening margin accounts: an owner's second account marks every account of that owner as
sharing it (`MarginAccount.shares_owner`), which the revaluation's book reads instead of
counting each owner's accounts."""

from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import MarginAccount
from margin.selectors.book import account_id_runs, engine_book
from margin.services.ledger import margin_account_open
from margin.services.positions import position_market_fill
from tests.factories import UserFactory
from tests.ledger.support import fund, new_key


def _shares(*accounts) -> list[bool]:
    return [MarginAccount.objects.get(pk=a.pk).shares_owner for a in accounts]


def test_an_owners_second_account_marks_both_and_no_one_elses(reference):
    # given an owner with one account, and another owner with one
    owner = UserFactory()
    first = margin_account_open(owner=owner, name="Main")
    other = margin_account_open(owner=UserFactory(), name="Main")
    assert _shares(first, other) == [False, False]
    # when  the owner opens a second and a third
    second = margin_account_open(owner=owner, name="Hedge")
    third = margin_account_open(owner=owner, name="Options")
    # then  each of the owner's accounts shares its owner; the other owner's does not
    assert _shares(first, second, third, other) == [True, True, True, False]


def test_a_taken_name_opens_nothing_and_marks_nothing(reference):
    # given an owner with one account
    owner = UserFactory()
    first = margin_account_open(owner=owner, name="Main")
    # when  a second account under the same name is asked for
    with pytest.raises(ApplicationError):
        margin_account_open(owner=owner, name="Main")
    # then  the owner still holds one account, not marked
    assert MarginAccount.objects.filter(owner=owner).count() == 1
    assert _shares(first) == [False]


def test_the_book_counts_an_owners_holdings_over_accounts_outside_the_slice(reference):
    # given one owner long 0.2 BTC in one account and 0.3 in another, a second owner 0.7 alone
    owner = UserFactory()
    accounts = [
        margin_account_open(owner=owner, name="Main"),
        margin_account_open(owner=UserFactory(), name="Main"),
        margin_account_open(owner=owner, name="Hedge"),
    ]
    for account, quantity in zip(accounts, ("0.2", "0.7", "0.3"), strict=True):
        fund(account, "USDT", "50000")
        position_market_fill(
            account=account,
            instrument="BTCUSDT",
            side="buy",
            quantity=Decimal(quantity),
            idempotency_key=new_key(),
        )
    # when  the book is read for the first account's id range alone
    slice_ = engine_book(account_range=(accounts[0].pk, accounts[0].pk))
    # then  its position carries its owner's 0.5 over both accounts
    assert slice_.book.pos_owner_quantity.tolist() == pytest.approx([0.5])
    # and   the whole book: each owner's total on each of their positions
    whole = engine_book()
    assert sorted(whole.book.pos_owner_quantity) == pytest.approx([0.5, 0.5, 0.7])


def test_account_ids_are_cut_into_runs_of_the_shard_size(reference):
    # given five accounts
    ids = [margin_account_open(owner=UserFactory()).pk for _ in range(5)]
    # when  cut into runs of two, and of five
    # then  (first, last) of each run in id order, the last run shorter, and the count
    assert account_id_runs(2) == ([(ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[4])], 5)
    assert account_id_runs(5) == ([(ids[0], ids[4])], 5)

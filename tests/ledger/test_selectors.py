from decimal import Decimal

import numpy as np
import pytest
from django.http import Http404

from margin.engine.reference import quote_account
from margin.engine.vector import revalue
from margin.models import CreditTier, JournalKind
from margin.selectors.accounts import account_of_user_or_404, accounts_of, engine_accounts
from margin.selectors.book import engine_book
from margin.selectors.ledger import ledger_history
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from tests.factories import MarginAccountFactory
from tests.ledger.support import fund, new_key, set_mark


def _book_of_three():
    tiers = CreditTier.objects.in_bulk(["standard", "vip", "restricted"], field_name="code")
    accounts = [MarginAccountFactory(credit_tier=tier) for tier in tiers.values()]
    for n, account in enumerate(accounts):
        fund(account, "USDT", "50000")
        fund(account, "ETH", str(3 + n))
        position_market_fill(
            account=account,
            instrument="BTCUSDT",
            side="buy",
            quantity=Decimal("0.3"),
            idempotency_key=new_key(),
        )
        position_market_fill(
            account=account,
            instrument="SOLUSDT",
            side="sell",
            quantity=Decimal(50 + n),
            idempotency_key=new_key(),
        )
    position_margin_mode_switch(
        account=accounts[1],
        instrument="BTCUSDT",
        mode="isolated",
        isolated_margin=Decimal("4000"),
        idempotency_key=new_key(),
    )
    set_mark("BTCUSDT", "93000")
    return accounts


def test_engine_accounts_and_the_vector_book_give_the_reference_figures(
    reference, django_assert_max_num_queries
):
    # given three accounts, one with an isolated position, after a move of the mark
    accounts = _book_of_three()
    ids = [a.pk for a in accounts]
    # when
    with django_assert_max_num_queries(12):
        inputs = engine_accounts(ids)
    # (two of them read the parameter version's bracket listing, which keys the cached terms:
    # a future listed at an expiry adds brackets)
    with django_assert_max_num_queries(17):
        book = engine_book(ids)
    figures = revalue(book.book, book.marks, book.asset_prices)
    # then every account's cross figures agree with the Decimal reference
    assert list(book.account_ids) == sorted(ids)
    for row, pk in enumerate(book.account_ids):
        quote = quote_account(inputs[int(pk)])
        assert figures.margin_balance[row] == pytest.approx(float(quote.margin_balance), rel=1e-9)
        assert figures.account_maintenance_margin[row] == pytest.approx(
            float(quote.maintenance_margin), rel=1e-9
        )
        assert figures.withdrawable[row] == pytest.approx(float(quote.withdrawable), rel=1e-9)
    isolated = np.flatnonzero(book.book.pos_isolated)
    assert len(isolated) == 1
    assert book.book.pos_isolated_margin[isolated[0]] == 4000
    position_ids = {row.id for quote in inputs.values() for row in quote.positions}
    assert position_ids == {str(pk) for pk in book.position_ids}


def test_the_whole_book_loads_when_no_ids_are_given(reference):
    accounts = _book_of_three()
    book = engine_book()
    assert set(book.account_ids) >= {a.pk for a in accounts}
    assert book.book.n_positions == 6


def test_a_user_sees_only_their_own_accounts(reference):
    mine = MarginAccountFactory()
    other = MarginAccountFactory()
    assert list(accounts_of(mine.owner)) == [mine]
    assert account_of_user_or_404(mine.owner, mine.pk) == mine
    with pytest.raises(Http404):
        account_of_user_or_404(mine.owner, other.pk)


def test_ledger_history_lists_the_account_entries_newest_first_with_filters(account):
    fund(account, "USDT", "1000")
    fund(account, "BTC", "1")
    position_market_fill(
        account=account,
        instrument="BTCUSDT",
        side="buy",
        quantity=Decimal("0.01"),
        idempotency_key=new_key(),
    )
    other = MarginAccountFactory()
    fund(other, "USDT", "5")
    entries = list(ledger_history(account=account))
    assert [e.journal.kind for e in entries] == [
        JournalKind.FILL,
        JournalKind.DEPOSIT,
        JournalKind.DEPOSIT,
    ]
    assert [e.asset.symbol for e in ledger_history(account=account, filters={"asset": "BTC"})] == [
        "BTC"
    ]
    assert ledger_history(account=account, filters={"kind": JournalKind.FILL}).get().amount < 0

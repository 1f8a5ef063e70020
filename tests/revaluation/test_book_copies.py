"""A shard's book read through the copy a worker left, brought up to date from the database's
change log, is the book a full read returns, whatever wrote to it in between
(`margin.selectors.book_rows`)."""

import dataclasses
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.models import F

from margin.db import execute
from margin.db import rows as sql_rows
from margin.dbtriggers import BOOK_CHANGES, BOOK_CHANGES_HORIZON
from margin.models import LedgerAccount, MarginAccount, Position
from margin.selectors.book import engine_book
from margin.selectors.book_rows import BookRead, book_copies_clear
from margin.services.book_changes import book_changes_prune
from margin.services.collateral import collateral_withdraw
from margin.services.funding import funding_settle_due
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from margin.services.revaluation import SHARD_ACCOUNT_FIELDS
from tests.revaluation.factories import funded_account
from tests.revaluation.test_funding import premium_through_interval
from tests.trader.factories import new_key

pytestmark = pytest.mark.django_db(transaction=True)

# A shard's range reaching past the accounts there are: an account opened later falls in it.
RANGE_WIDTH = 1_000_000


def shard_read(first: int):
    return engine_book(
        account_range=(first, first + RANGE_WIDTH), account_fields=SHARD_ACCOUNT_FIELDS
    )


def assert_same(cached, fresh, path="slice") -> None:
    """Every array, number and name of the two (dataclasses field by field) equal."""
    if dataclasses.is_dataclass(cached):
        for name in (f.name for f in dataclasses.fields(cached)):
            if name != "read":
                assert_same(getattr(cached, name), getattr(fresh, name), f"{path}.{name}")
    elif isinstance(cached, np.ndarray):
        np.testing.assert_array_equal(cached, fresh, err_msg=path)
        assert cached.dtype == fresh.dtype, path
    elif isinstance(cached, dict):
        assert cached.keys() == fresh.keys(), path
        for key in cached:
            assert_same(cached[key], fresh[key], f"{path}[{key!r}]")
    else:
        assert cached == fresh, path


def assert_as_a_full_read(first: int, *, accounts_read: int):
    cached = shard_read(first)
    assert cached.read.cached and cached.read.accounts_read == accounts_read
    book_copies_clear()
    fresh = shard_read(first)
    assert not fresh.read.cached and fresh.read.accounts_read == len(fresh.account_ids)
    assert_same(cached, fresh)
    return cached


def test_a_copy_brought_up_to_date_is_a_full_read_after_every_kind_of_write(market, settings, now):
    # given: accounts with cross and isolated positions, the shard read once (its copy kept)
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    trader = funded_account(usdt="50000", fills=[("BTCUSDT", "buy", "0.2")])
    isolating = funded_account(usdt="40000", fills=[("ETHUSDT", "sell", "3")])
    withdrawing = funded_account(usdt="20000", ETH="2")
    flagged = funded_account(usdt="9000", fills=[("SOLUSDT", "buy", "10")])
    releveraged = funded_account(usdt="9000", fills=[("BTCUSDT", "sell", "0.01")])
    # (enough of them that six changed are under a quarter of the shard: read again alone)
    untouched = [funded_account(usdt="7000") for _ in range(20)]
    first = trader.pk
    before = shard_read(first)
    assert not before.read.cached and before.read.accounts_read == 25
    # when: an order, a transfer, a margin-mode switch, raw QuerySet.updates of an account and
    # of a position, an account opened in the range
    position_market_fill(
        account=trader,
        instrument="ETHUSDT",
        side="buy",
        quantity=Decimal(2),
        idempotency_key=new_key(),
    )
    collateral_withdraw(
        account=withdrawing, asset="ETH", amount=Decimal(1), idempotency_key=new_key()
    )
    position_margin_mode_switch(
        account=isolating,
        instrument="ETHUSDT",
        mode="isolated",
        isolated_margin=Decimal("3000"),
        idempotency_key=new_key(),
    )
    MarginAccount.objects.filter(pk=flagged.pk).update(reduce_only=True, state="warning")
    Position.objects.filter(margin_account=releveraged).update(leverage=F("leverage") / 2)
    opened = funded_account(usdt="3000", fills=[("SOLUSDT", "sell", "5")])
    # then: those six accounts read again, and the book is a full read's
    after = assert_as_a_full_read(first, accounts_read=6)
    assert untouched[-1].pk in after.account_ids and opened.pk in after.account_ids
    assert after.book.pos_isolated.sum() == before.book.pos_isolated.sum() + 1
    assert after.account_fields["reduce_only"][after.account_ids.tolist().index(flagged.pk)]
    # when: a funding time passes and is settled (every position's account pays or is paid)
    settings.FUNDING_SETTLEMENT_ENABLED = True
    settings.FUNDING_ANCHOR = now + timedelta(minutes=1) - timedelta(seconds=1)
    premium_through_interval("BTCUSDT", until=settings.FUNDING_ANCHOR, premium=Decimal("0.001"))
    wallets = list(LedgerAccount.objects.order_by("pk").values_list("balance", flat=True))
    assert funding_settle_due(now=now + timedelta(minutes=1)).positions == 6
    assert list(LedgerAccount.objects.order_by("pk").values_list("balance", flat=True)) != wallets
    # then: the five accounts holding positions read again
    assert_as_a_full_read(first, accounts_read=5)
    # when nothing changes, nothing is read again
    assert_as_a_full_read(first, accounts_read=0)
    # when most of the shard changes, the copy is dropped and the shard read whole
    MarginAccount.objects.filter(pk__in=[a.pk for a in untouched]).update(reduce_only=True)
    assert shard_read(first).read == BookRead(cached=False, accounts_read=26)


def test_a_write_that_commits_after_the_read_began_before_it_is_read_next_time(market):
    # given: two accounts; a transaction writes to the first and stays open, a later one
    # writes to the second and commits, and only then is the shard read (it sees the second)
    first = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    second = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    for _ in range(8):  # the shard's other accounts: two changed are under a quarter of it
        funded_account(usdt="5000")
    wrote, read = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                Position.objects.filter(margin_account=first).update(leverage=3)
                wrote.set()
                assert read.wait(timeout=30)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert wrote.wait(timeout=30)
        Position.objects.filter(margin_account=second).update(leverage=4)
        before = shard_read(first.pk)
    finally:
        # when the first commits after the read (its transaction id below the second's)
        read.set()
        writer.join()
    assert leverages(before) == {first.pk: 10, second.pk: 4}
    # then the next read brings it in (and only it: the read saw the second's write)
    after = assert_as_a_full_read(first.pk, accounts_read=1)
    assert leverages(after) == {first.pk: 3, second.pk: 4}


def leverages(slice_) -> dict[int, float]:
    """Each account's position's leverage (one position each)."""
    holders = slice_.account_ids[slice_.book.pos_account].tolist()
    return dict(zip(holders, slice_.book.pos_leverage.tolist(), strict=True))


def horizon() -> tuple[int, int]:
    ((pruned_below, next_below),) = sql_rows(
        f"SELECT pruned_below::text, next_below::text FROM {BOOK_CHANGES_HORIZON}"
    )
    return int(pruned_below), int(next_below)


def test_pruning_drops_the_log_below_the_bound_it_took_last_time(market):
    # given: changes noted
    account = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    Position.objects.filter(margin_account=account).update(leverage=2)
    # when the log is pruned with nothing kept, twice
    book_changes_prune(keep_s=0)
    _, bound = horizon()
    book_changes_prune(keep_s=0)
    # then the second pruning moved the horizon to the bound the first took, and dropped
    # every change below it
    assert horizon()[0] == bound
    below = sql_rows(f"SELECT count(*) FROM {BOOK_CHANGES} WHERE xid < %s::text::xid8", [bound])
    assert below == [(0,)]
    # and a pruning not yet due (kept 10 minutes) moves nothing
    before = horizon()
    assert book_changes_prune(keep_s=600) == 0 and horizon() == before


def test_a_copy_older_than_the_pruned_log_is_read_whole(market):
    # given: a shard read once (its copy kept), then one of its accounts changed
    account = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    shard_read(account.pk)
    Position.objects.filter(margin_account=account).update(leverage=2)
    # when the log has been pruned past every transaction the copy's snapshot may not see
    # (what `book_changes_prune` does BOOK_CHANGE_KEEP_S after a bound taken after it)
    pruned_below, _ = horizon()
    execute(
        f"UPDATE {BOOK_CHANGES_HORIZON} SET pruned_below = pg_snapshot_xmax(pg_current_snapshot())"
    )
    # then the copy is not used: the shard is read whole
    try:
        again = shard_read(account.pk)
    finally:
        # (the horizon is no table of Django's: the next tests find it as it was)
        execute(f"UPDATE {BOOK_CHANGES_HORIZON} SET pruned_below = %s::text::xid8", [pruned_below])
    assert again.read == BookRead(cached=False, accounts_read=1)
    assert again.book.pos_leverage.tolist() == [2]


def test_inside_a_transaction_the_book_is_read_whole_and_no_copy_kept(market):
    account = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    with transaction.atomic():
        assert not shard_read(account.pk).read.cached
    # the one read outside kept nothing before it, so it reads everything too
    assert not shard_read(account.pk).read.cached
    assert shard_read(account.pk).read.cached


def test_no_copy_is_read_from_a_directory_others_may_write_to(market, settings):
    # given: a shard read once, its copy kept
    account = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.01")])
    shard_read(account.pk)
    assert shard_read(account.pk).read.cached
    # when anyone may write to the copies' directory, its copies are not read (each is
    # unpickled)
    Path(settings.BOOK_CACHE_DIR).chmod(0o777)
    assert not shard_read(account.pk).read.cached
    # and when it is private again, they are
    Path(settings.BOOK_CACHE_DIR).chmod(0o700)
    assert shard_read(account.pk).read.cached

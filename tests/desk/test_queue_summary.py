"""The queue counted and paged from what the tick wrote down (each shard's `queue`) gives the
same rows, in the same order, and the same count as the plain query over the snapshots."""

import itertools

import numpy as np
import pytest
from django.core.paginator import Paginator
from django.urls import reverse

from margin.engine.queue import NULL_KEY, head_candidates, key_error, queue_head
from margin.filters import QUEUE_ORDERS, QueueFilter
from margin.models import AccountState, CreditTier, MarginAccount, RevaluationShard
from margin.selectors import desk as desk_selectors
from margin.selectors.desk import latest_complete_tick, queue_snapshots, ratio_heat_map
from margin.services import revaluation
from margin.services.revaluation import revaluation_tick_run
from tests.desk.conftest import move_btc
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db

HEAD_ROWS = 3


@pytest.fixture
def crowded_book(market, settings, monkeypatch):
    """Pairs of identical accounts (ties: the account id decides) from margin call to healthy,
    one without positions (not in the queue), over shards of 4 accounts; heads of 3 rows, so
    a page of 3 reads them and the heads leave some rows out."""
    settings.REVALUATION_SHARD_SIZE = 4
    monkeypatch.setattr(desk_selectors, "QUEUE_HEAD_ROWS", HEAD_ROWS)
    monkeypatch.setattr(revaluation, "QUEUE_HEAD_ROWS", HEAD_ROWS)
    for usdt in ("5000", "5150", "6000", "9000", "40000"):
        for _ in range(2):
            funded_account(usdt=usdt, fills=[("BTCUSDT", "buy", "0.5")])
    funded_account(usdt="7000", fills=[("BTCUSDT", "buy", "0.3")])
    funded_account(usdt="1000")
    move_btc(market, 90000, 85400)
    revaluation_tick_run(now=market())


QUERIES = [
    {"order": order, "state": list(states)}
    for order in QUEUE_ORDERS
    for n in range(3)
    for states in itertools.combinations(
        [AccountState.HEALTHY, AccountState.WARNING, AccountState.MARGIN_CALL], n
    )
]


def _pages(query: dict) -> tuple[int, list[list[int]]]:
    rows = QueueFilter(query, queryset=queue_snapshots(latest_complete_tick())).qs
    pages = [rows[0:1], rows[0:2], rows[0:HEAD_ROWS], rows[1:HEAD_ROWS], rows[2:5], rows[0:50]]
    return rows.count(), [[s.account_id for s in page] for page in pages]


def test_the_summary_counts_and_pages_as_the_plain_query(crowded_book):
    # given: every tick shard wrote its summary
    assert RevaluationShard.objects.filter(queue__isnull=True).count() == 0
    fast = {str(query): _pages(query) for query in QUERIES}
    # when: the same queries without it (the shards of a tick written before the summary)
    RevaluationShard.objects.update(queue=None)
    plain = {str(query): _pages(query) for query in QUERIES}
    # then
    assert fast == plain
    assert plain[str({"order": "ratio", "state": []})][0] == 11
    assert plain[str({"order": "ratio", "state": [AccountState.MARGIN_CALL]})][0] >= 2


def test_the_summary_counts_without_counting_and_pages_from_the_heads(
    crowded_book, django_assert_num_queries
):
    rows = QueueFilter({"order": "buffer"}, queryset=queue_snapshots(latest_complete_tick())).qs
    with django_assert_num_queries(0):
        assert rows.count() == 11
    page = str(rows[0:HEAD_ROWS].query)
    assert "account_id" in page and " IN (" in page


def test_a_tick_writing_part_of_the_book_counts_and_pages_as_the_plain_query(
    crowded_book, market, settings
):
    # given: a tick that writes the accounts at risk, at the queue's heads, opened since the
    # last tick and of its refresh class only
    settings.SNAPSHOT_REFRESH_TICKS = 3
    for usdt in ("50000", "60000", "70000"):
        funded_account(usdt=usdt, fills=[("BTCUSDT", "buy", "0.1")])
    tick = revaluation_tick_run(now=market()).start.tick
    assert tick.refresh_class == 0
    # when
    fast = {str(query): _pages(query) for query in QUERIES}
    RevaluationShard.objects.update(queue=None)
    plain = {str(query): _pages(query) for query in QUERIES}
    # then: every account with positions is in the queue, with its latest row
    assert fast == plain
    assert plain[str({"order": "ratio", "state": []})][0] == 14
    _, rows = ratio_heat_map(tick)
    assert sum(cell.accounts for row in rows for cell in row["cells"]) == 14


def test_the_queue_page_says_which_rows_are_of_an_earlier_tick(
    market, settings, monkeypatch, client, officer
):
    # given: healthy accounts of different sizes, heads of one row: a second tick leaves most
    # of them to their refresh class
    settings.SNAPSHOT_REFRESH_TICKS = 3
    monkeypatch.setattr(desk_selectors, "QUEUE_HEAD_ROWS", 1)
    monkeypatch.setattr(revaluation, "QUEUE_HEAD_ROWS", 1)
    for n in range(8):
        funded_account(usdt=str(30000 + 1000 * n), fills=[("BTCUSDT", "buy", f"0.{n + 1}")])
    first = revaluation_tick_run(now=market()).start.tick
    tick = revaluation_tick_run(now=market()).start.tick
    earlier = queue_snapshots(tick).filter(tick=first).count()
    assert earlier
    client.force_login(officer)
    # when
    page = client.get(reverse("desk:landing")).content.decode()
    # then
    assert page.count('data-testid="as-of"') == earlier
    assert f"as of tick {first.pk}" in page


def test_any_other_filter_counts_and_pages_by_querying(crowded_book):
    tick = latest_complete_tick()
    rows = QueueFilter({"min_notional": "1"}, queryset=queue_snapshots(tick)).qs
    assert rows.summary is None
    assert rows.count() == 11


FILTERED = [
    {"min_notional": "1"},
    {"min_notional": "40000", "order": "buffer"},
    {"asset": "BTC", "order": "size"},
    {"credit_tier": "standard", "order": "stress"},
    {"reduce_only": "false", "state": [AccountState.WARNING, AccountState.HEALTHY]},
    {"min_ratio": "5"},
]


@pytest.mark.parametrize("query", FILTERED)
def test_a_filtered_queue_counts_and_pages_as_its_rows(
    crowded_book, query, django_assert_num_queries
):
    # given: every row of the filtered queue, in its order, read without counting or slicing
    if "credit_tier" in query:
        query = {**query, "credit_tier": CreditTier.objects.get(code="standard").pk}
    every = [
        s.account_id
        for s in QueueFilter(query, queryset=queue_snapshots(latest_complete_tick())).qs
    ]
    assert every
    # when: a paginator counts and pages it (the pages within the first HEAD_ROWS rows read by
    # the keys the count found), and a slice is taken without a count (a plain query)
    paginator = Paginator(
        QueueFilter(query, queryset=queue_snapshots(latest_complete_tick())).qs, 2
    )
    with django_assert_num_queries(2):
        first = [s.account_id for s in paginator.page(1)]
    pages = [first] + [[s.account_id for s in paginator.page(n)] for n in paginator.page_range[1:]]
    sliced = QueueFilter(query, queryset=queue_snapshots(latest_complete_tick())).qs[1:HEAD_ROWS]
    # then
    assert paginator.count == len(every)
    assert pages == [every[n : n + 2] for n in range(0, len(every), 2)]
    assert [s.account_id for s in sliced] == every[1:HEAD_ROWS]


@pytest.mark.parametrize("listed_max", [100_000, 2])
def test_a_filter_on_the_account_lists_its_accounts_or_joins_them_alike(
    crowded_book, monkeypatch, listed_max
):
    # given: two reduce-only accounts and three of another tier (more than `listed_max`
    # accounts: filtered in the join instead of listed)
    monkeypatch.setattr(desk_selectors, "ACCOUNTS_LISTED_MAX", listed_max)
    queued = list(
        queue_snapshots(latest_complete_tick())
        .filter(maintenance_margin__gt=0)
        .values_list("account_id", flat=True)
    )
    MarginAccount.objects.filter(pk__in=queued[:2]).update(reduce_only=True)
    vip = CreditTier.objects.get(code="vip")
    MarginAccount.objects.filter(pk__in=queued[1:4]).update(credit_tier=vip)
    # when
    found = {
        label: QueueFilter(query, queryset=queue_snapshots(latest_complete_tick())).qs
        for label, query in (
            ("reduce-only", {"reduce_only": "true"}),
            ("not reduce-only", {"reduce_only": "false"}),
            ("vip", {"credit_tier": vip.pk}),
            ("vip, reduce-only", {"credit_tier": vip.pk, "reduce_only": "true"}),
        )
    }
    # then
    assert {label: {s.account_id for s in rows} for label, rows in found.items()} == {
        "reduce-only": set(queued[:2]),
        "not reduce-only": set(queued[2:]),
        "vip": set(queued[1:4]),
        "vip, reduce-only": {queued[1]},
    }
    assert [rows.count() for rows in found.values()] == [2, len(queued) - 2, 3, 1]


def test_the_heads_hold_the_first_rows_whatever_the_stored_keys_within_their_error():
    # given: keys with many ties, stored keys anywhere within the error or, for some rows,
    # known exactly (error 0: ties among them go by id), in 7 heads
    rng = np.random.default_rng(5)
    for _ in range(50):
        key = rng.integers(0, 20, 300).astype(float)
        error = np.where(rng.random(300) < 0.3, 0.0, 0.5)
        stored = key + error * rng.uniform(-1, 1, 300)
        ids = np.arange(300)
        n = int(rng.integers(1, 40))
        heads = [
            row
            for part in np.array_split(rng.permutation(300), 7)
            for row in queue_head(key[part], error[part], ids[part], n)
        ]
        # when
        candidates = set(head_candidates(heads, n))
        # then: the first n rows by (stored key, id) are all among them
        first = sorted(ids.tolist(), key=lambda i: (stored[i], i))[:n]
        assert set(first) <= candidates


def test_rows_whose_keys_are_known_exactly_tie_by_id():
    # given: 1,000 accounts without a margin ratio (all stored as null: first in the ratio
    # order on PostgreSQL) and 200 with one, over 4 shards
    ratio = np.concatenate([np.full(1000, np.nan), np.linspace(0, 1, 200)])
    key = np.where(np.isnan(ratio), -NULL_KEY, -ratio)
    error = key_error(ratio)
    ids = np.random.default_rng(3).permutation(len(key))
    heads = [
        row
        for part in np.array_split(np.arange(len(key)), 4)
        for row in queue_head(key[part], error[part], ids[part], 50)
    ]
    # when
    candidates = head_candidates(heads, 50)
    # then: the 50 lowest ids of the exact ties, and each shard kept 50 rows, not all its ties
    assert len(heads) == 200
    assert sorted(candidates) == sorted(ids[:1000])[:50]


def test_the_queue_before_any_tick_counts_none_with_any_filter():
    for query in ({}, {"min_notional": "1"}, {"reduce_only": "true"}):
        paginator = Paginator(QueueFilter(query, queryset=queue_snapshots(None)).qs, 2)
        assert paginator.count == 0
        assert list(paginator.get_page(1)) == []

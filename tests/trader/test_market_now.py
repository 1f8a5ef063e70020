"""The market read once per market tick in a process (`margin.selectors.market_now`): kept
between polls, read again as soon as a write to what it is read from is committed, always afresh
inside a transaction; and nothing of an account in it, so a poll shows the trader's own write at
once and never another trader's figures.

The tests commit (transactional database), as the web processes' requests do."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import F

from margin.engine.reference import quote_account
from margin.models import MarkPrice
from margin.selectors.accounts import engine_accounts
from margin.selectors.market_now import market_now
from margin.services.collateral import collateral_deposit
from margin.templatetags.numbers import money
from tests.trader.test_fragments import live_url, queries_of

pytestmark = pytest.mark.django_db(transaction=True)

# The poll's queries once the market is read for the tick, for an owner of one account: session,
# user, account, the fingerprint, the account's state (three), snapshot, the parameter version's
# listing, the positions' funding paid (test_fragments.LIVE_QUERIES: 18 reading the market).
LIVE_QUERIES_IN_A_TICK = 10


@pytest.fixture
def per_tick(settings):
    """The per-tick read on, its time slot far longer than a test: only a write moves it."""
    settings.MARKET_READ_CACHE_S = 3600


def mark_doubled(symbol: str) -> None:
    MarkPrice.objects.filter(instrument__symbol=symbol).update(mark_price=F("mark_price") * 2)


def test_a_second_read_in_the_tick_is_the_first_for_one_query(
    per_tick, reference, django_assert_num_queries
):
    # given
    first = market_now()
    # when
    with django_assert_num_queries(1):  # the fingerprint
        again = market_now()
    # then
    assert again is first


def test_a_read_older_than_the_setting_is_read_again(settings, reference):
    # given: reads are kept a microsecond
    settings.MARKET_READ_CACHE_S = 1e-6
    first = market_now()
    # when / then: what depends on the time of the read (an option's time to expiry) moves
    assert market_now() is not first


def test_a_committed_mark_is_read_at_once(per_tick, reference):
    # given
    before = market_now().market["marks"]["BTCUSDT"]
    # when
    mark_doubled("BTCUSDT")
    # then
    assert market_now().market["marks"]["BTCUSDT"] == 2 * before


def test_inside_a_transaction_every_read_is_afresh(per_tick, reference):
    with transaction.atomic():
        # given: the transaction has written the mark and read it
        mark_doubled("BTCUSDT")
        before = market_now().market["marks"]["BTCUSDT"]
        # when: it writes the row again, under the same transaction id (the fingerprint stays)
        mark_doubled("BTCUSDT")
        # then
        assert market_now().market["marks"]["BTCUSDT"] == 2 * before


def test_the_poll_reads_the_market_once_a_tick(per_tick, htmx, account):
    # given
    htmx.get(live_url(account))
    # when / then
    assert queries_of(htmx, live_url(account)) <= LIVE_QUERIES_IN_A_TICK


def margin_balance(account) -> Decimal:
    """As the reference engine has it on the market read afresh."""
    return quote_account(engine_accounts([account.pk])[account.pk]).margin_balance


def test_the_poll_shows_a_new_mark_and_the_traders_own_deposit_at_once(per_tick, htmx, account):
    # given: the market and the account read once in the tick
    before = margin_balance(account)
    assert money(before) in htmx.get(live_url(account)).content.decode()
    # when
    mark_doubled("BTCUSDT")
    collateral_deposit(
        account=account, asset="USDT", amount=Decimal("1234"), idempotency_key="own-write"
    )
    content = htmx.get(live_url(account)).content.decode()
    # then
    after = margin_balance(account)
    assert after > before + Decimal("1234")  # the long's gain on the doubled mark, and more
    assert money(after) in content


def test_each_trader_polls_their_own_figures(per_tick, client, account, other_account):
    # given: the other trader polls first, in the same tick
    client.defaults["HTTP_HX_REQUEST"] = "true"
    client.force_login(other_account.owner)
    assert (
        money(margin_balance(other_account)) in client.get(live_url(other_account)).content.decode()
    )
    client.force_login(account.owner)
    # when
    content = client.get(live_url(account)).content.decode()
    # then
    assert money(margin_balance(account)) in content
    assert money(margin_balance(other_account)) not in content
    assert client.get(live_url(other_account)).status_code == 404

"""A tick after the first writes the snapshots of the accounts at risk, changing state or at
the head of the desk's queue, and of one class of the healthy rest: each account's latest row
is then at most SNAPSHOT_REFRESH_TICKS complete ticks old, and readers take that row."""

import pytest

from margin.models import AccountState, MarginSnapshot, RevaluationTick
from margin.selectors.market import latest_snapshot, snapshots_as_of
from margin.services import revaluation
from margin.services.revaluation import (
    revaluation_tick_run,
    revaluation_tick_start,
    snapshots_prune,
)
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db

REFRESH = 3


@pytest.fixture
def refresh(settings, monkeypatch):
    settings.SNAPSHOT_REFRESH_TICKS = REFRESH
    # One row per order and state at the queue's head: most healthy rows are left out of it.
    monkeypatch.setattr(revaluation, "QUEUE_HEAD_ROWS", 1)


def _written(tick: RevaluationTick) -> set[int]:
    return set(MarginSnapshot.objects.filter(tick=tick).values_list("account_id", flat=True))


def test_a_later_tick_writes_the_accounts_at_risk_and_its_refresh_class(refresh, market, later):
    # given: nine healthy accounts of different sizes and one that the fall puts at risk
    healthy = [
        funded_account(usdt=str(30000 + 1000 * n), fills=[("BTCUSDT", "buy", f"0.{n + 1}")])
        for n in range(9)
    ]
    risky = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.5")])
    first = revaluation_tick_run(now=later(1)).start.tick
    for n, btc in enumerate((90000, 85400)):  # within the price guard
        market_prices(at=later(2 + n), BTC=btc, ETH=3400, SOL=230, USDT=1, USDC=1)
    # when
    second = revaluation_tick_run(now=later(4)).start.tick
    # then: the first tick wrote every account, the second its class and those at risk
    accounts = {a.pk for a in [*healthy, risky]}
    assert (first.refresh_class, second.refresh_class) == (None, 0)
    assert _written(first) == accounts
    risky.refresh_from_db()
    assert risky.state != AccountState.HEALTHY
    written = _written(second)
    assert risky.pk in written
    assert {pk for pk in accounts if pk % REFRESH == 0} <= written
    skipped = accounts - written
    assert skipped, "the queue's heads of one row each leave healthy accounts out"
    # every account still has one latest row: the tick's own, or the first tick's
    as_of = dict(snapshots_as_of(second).values_list("account_id", "tick_id"))
    assert as_of == {pk: first.pk if pk in skipped else second.pk for pk in accounts}
    account = next(a for a in healthy if a.pk in skipped)
    assert latest_snapshot(account).tick_id == first.pk


def test_the_classes_follow_the_complete_ticks_and_start_over_after_a_lost_one(
    refresh, market, later, settings
):
    # given: healthy accounts holding nothing (never in the queue)
    settings.REVALUATION_TICK_TIMEOUT_S = 10
    accounts = {funded_account(usdt="100").pk for _ in range(7)}
    ticks = [revaluation_tick_run(now=later(n)).start.tick for n in (1, 2, 3, 4)]
    lost = revaluation_tick_start(now=later(5)).tick
    # when
    after = revaluation_tick_run(now=later(20)).start.tick
    # then: each complete tick wrote its class; the one after a lost tick every account
    lost.refresh_from_db()
    assert lost.status == RevaluationTick.Status.ABANDONED
    assert [t.refresh_class for t in [*ticks, lost]] == [None, 0, 1, 2, 0]
    for tick in ticks[1:]:
        assert _written(tick) == {pk for pk in accounts if pk % REFRESH == tick.refresh_class}
    assert after.refresh_class is None and _written(after) == accounts
    assert snapshots_as_of(ticks[-1]).count() == len(accounts)


def test_prune_keeps_each_accounts_latest_row(refresh, market, later, settings):
    # given: fewer ticks kept than a refresh takes
    settings.SNAPSHOT_KEEP_TICKS = 1
    accounts = {funded_account(usdt="100").pk for _ in range(6)}
    ticks = [revaluation_tick_run(now=later(n)).start.tick for n in (1, 2, 3)]
    # when: the first tick's rows are some accounts' latest
    removed = snapshots_prune()
    # then
    assert removed == 0
    # when: a refresh later they are not
    ticks.append(revaluation_tick_run(now=later(4)).start.tick)
    removed = snapshots_prune()
    # then
    assert removed == len(accounts)
    assert not MarginSnapshot.objects.filter(tick=ticks[0]).exists()
    assert snapshots_as_of(ticks[-1]).count() == len(accounts)


def test_a_tick_after_the_revaluation_stopped_writes_every_account(
    refresh, market, later, settings
):
    # given: two ticks, then none for longer than a tick may take
    accounts = {funded_account(usdt="100").pk for _ in range(4)}
    for n in (1, 2):
        revaluation_tick_run(now=later(n))
    # when
    tick = revaluation_tick_run(now=later(3 + settings.REVALUATION_TICK_TIMEOUT_S)).start.tick
    # then
    assert tick.refresh_class is None
    assert _written(tick) == accounts

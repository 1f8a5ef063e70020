from decimal import Decimal

import pytest

from margin.models import (
    AccountEvent,
    AccountState,
    AuditEntry,
    MarginSnapshot,
    Notification,
    RevaluationShard,
    RevaluationTick,
)
from margin.selectors.accounts import unread_notifications
from margin.selectors.figures import figures_now
from margin.selectors.market import latest_snapshot, position_figures, snapshot_history
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.notifications import (
    notification_create,
    notification_email_send,
    notifications_mark_read,
)
from margin.services.revaluation import (
    revaluation_shard_run,
    revaluation_tick_run,
    revaluation_tick_start,
    snapshots_prune,
)
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def test_a_tick_snapshots_every_account_with_its_position_figures(market, later):
    # given
    long_btc = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    idle = funded_account(usdt="50")
    # when
    run = revaluation_tick_run(now=later(1))
    # then
    tick = RevaluationTick.objects.get()
    assert tick.status == RevaluationTick.Status.COMPLETE and tick.completed_at
    assert tick.n_accounts == 2 and MarginSnapshot.objects.filter(tick=tick).count() == 2
    snapshot = latest_snapshot(long_btc)
    assert not snapshot.is_stale
    assert snapshot.maintenance_margin == pytest.approx(Decimal("0.2") * 95000 * Decimal("0.004"))
    figures = position_figures(long_btc)
    (position,) = figures.values()
    assert position.bracket == 1 and position.mark_price == Decimal("95000")
    (reference_row,) = figures_now(long_btc).quote.positions
    assert position.maintenance_margin == reference_row.maintenance_margin == Decimal("76")
    assert position.liquidation_price == pytest.approx(reference_row.liquidation_price)
    assert position.bankruptcy_price == pytest.approx(reference_row.bankruptcy_price)
    assert position.bankruptcy_price < position.liquidation_price < position.mark_price
    assert latest_snapshot(idle).margin_ratio is None or latest_snapshot(idle).margin_ratio == 0
    assert run.to_liquidate == []


def test_a_snapshot_carries_the_gross_notional_of_cross_and_isolated_positions(market, later):
    # given: long 0.2 BTC in cross, short 3 ETH isolated
    account = funded_account(
        usdt="20000", fills=[("BTCUSDT", "buy", "0.2"), ("ETHUSDT", "sell", "3")]
    )
    position_margin_mode_switch(
        account=account,
        instrument="ETHUSDT",
        mode="isolated",
        isolated_margin=Decimal("2000"),
        idempotency_key="test-isolate-eth",
    )
    # when
    revaluation_tick_run(now=later(1))
    # then: |0.2| × 95,000 + |−3| × 3,400
    assert latest_snapshot(account).gross_notional == pytest.approx(Decimal("29200"))


def test_a_redelivered_shard_writes_nothing_twice(market, later):
    # given: a tick whose shard completed
    funded_account(usdt="2000", fills=[("ETHUSDT", "sell", "3")])
    run = revaluation_tick_run(now=later(1))
    (shard_id,) = run.start.shard_ids
    # when: the shard's message is delivered again
    again = revaluation_shard_run(shard_id=shard_id)
    # then
    assert again.already_done and again.to_liquidate == []
    assert MarginSnapshot.objects.count() == 1
    assert RevaluationShard.objects.get(pk=shard_id).accounts == 1


def test_states_escalate_at_thresholds_leave_with_hysteresis_and_notify_a_margin_call(
    market, later, mailoutbox
):
    # given: 2,000 USDT behind 0.2 BTC long at 10x (notional 19,000, MM 76, fee 9.5): at a BTC
    # price P the ratio is 0.0008·P / (0.2·P − 17,009.5)
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    revaluation_tick_run(now=later(1))
    account.refresh_from_db()
    assert account.state == AccountState.HEALTHY
    # when: BTC falls to 85,618: ratio ≈ 0.6
    market_prices(at=later(2), BTC=85618, USDT=1)
    revaluation_tick_run(now=later(3))
    account.refresh_from_db()
    assert account.state == AccountState.WARNING
    # when: 85,427: ratio ≈ 0.9
    market_prices(at=later(4), BTC=85427, USDT=1)
    run = revaluation_tick_run(now=later(5))
    for notification_id in run.shards[0].notifications:
        notification_email_send(notification_id=notification_id)
    account.refresh_from_db()
    # then
    assert account.state == AccountState.MARGIN_CALL
    notification = unread_notifications(account.owner).get()
    assert notification.kind == Notification.Kind.MARGIN_CALL
    (mail,) = mailoutbox
    assert mail.to == [account.owner.email] and "Margin call" in mail.body
    assert AccountEvent.objects.filter(account=account, to_state="margin_call").count() == 1
    assert (
        AuditEntry.objects.filter(
            margin_account=account, action="account.state_change", actor=None
        ).count()
        == 2
    )
    # when: a small recovery (ratio just under 0.8, within the hysteresis) keeps the state
    snapshot = latest_snapshot(account)
    market_prices(at=later(6), BTC=85491, USDT=1)
    revaluation_tick_run(now=later(7))
    account.refresh_from_db()
    assert latest_snapshot(account).margin_ratio < snapshot.margin_ratio
    assert latest_snapshot(account).margin_ratio > Decimal("0.75")
    assert account.state == AccountState.MARGIN_CALL
    # when: a real recovery leaves it
    market_prices(at=later(8), BTC=94000, USDT=1)
    revaluation_tick_run(now=later(9))
    account.refresh_from_db()
    assert account.state == AccountState.HEALTHY
    assert Notification.objects.filter(kind="margin_call").count() == 1


def test_only_one_tick_runs_at_a_time(market, later):
    # given: a tick whose shards have not reported
    funded_account(usdt="100")
    first = revaluation_tick_start(now=later(1))
    # when
    second = revaluation_tick_start(now=later(2))
    # then
    assert first.tick and second.tick is None
    assert "still running" in second.skipped


def test_a_tick_overdue_is_abandoned_and_the_next_one_covers_every_account(market, later, settings):
    # given: a tick that lost its worker
    settings.REVALUATION_TICK_TIMEOUT_S = 10
    accounts = [funded_account(usdt="100") for _ in range(3)]
    lost = revaluation_tick_start(now=later(1)).tick
    # when
    run = revaluation_tick_run(now=later(30))
    # then
    lost.refresh_from_db()
    assert lost.status == RevaluationTick.Status.ABANDONED
    assert MarginSnapshot.objects.filter(tick=run.start.tick).count() == len(accounts)


def test_prune_keeps_the_snapshots_of_the_latest_ticks_only(market, later, settings):
    # given: every account written every tick
    settings.SNAPSHOT_KEEP_TICKS = 2
    settings.SNAPSHOT_REFRESH_TICKS = 1
    account = funded_account(usdt="100")
    ticks = [revaluation_tick_run(now=later(n)).start.tick for n in range(1, 5)]
    # when
    removed = snapshots_prune()
    # then
    assert removed == 2
    kept = MarginSnapshot.objects.filter(account=account).values_list("tick_id", flat=True)
    assert sorted(kept) == [ticks[2].pk, ticks[3].pk]
    assert len(snapshot_history(account, limit=10)) == 2
    summarised = RevaluationShard.objects.filter(queue__isnull=False).values_list("tick_id")
    assert sorted({tick for (tick,) in summarised}) == [ticks[2].pk, ticks[3].pk]


def test_notifications_are_read_once_marked(market, later):
    # given
    account = funded_account(usdt="100")
    notification_create(account=account, kind=Notification.Kind.MARGIN_CALL, text="call")
    # when
    marked = notifications_mark_read(user=account.owner)
    # then
    assert marked == 1 and not unread_notifications(account.owner).exists()

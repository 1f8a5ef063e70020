"""A worker SIGKILLed in the middle of a tick, with real workers on the real broker."""

import os
import signal
import time

import pytest
from django.db.models import Count
from django.utils import timezone

from margin.models import (
    Fill,
    Liquidation,
    MarginAccount,
    MarginSnapshot,
    RevaluationShard,
    RevaluationTick,
)
from margin.services.reference import reference_data_ensure
from margin.tasks import revaluation_tick
from tests.celery_procs import celery_env, celery_process, wait_for
from tests.revaluation.factories import funded_account, market_prices

pytestmark = [pytest.mark.celery_live, pytest.mark.django_db(transaction=True)]

SHARD_SIZE = 2
TIMEOUT_S = 5
ACCOUNTS = 40


def fresh_prices():
    return market_prices(at=timezone.now(), BTC=85300, ETH=3400, SOL=230, USDT=1, USDC=1)


def worker(name, env, tmp_path):
    return celery_process(
        "worker",
        "--pool=solo",
        "-n",
        f"{name}@%h",
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        env=env,
        log=tmp_path / f"{name}.log",
    )


def test_a_worker_killed_mid_tick_loses_no_snapshot_and_liquidates_no_one_twice(tmp_path):
    # given: 40 accounts in shards of 2; every tenth is a long past its liquidation line
    reference_data_ensure()
    market_prices(at=timezone.now(), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    for n in range(ACCOUNTS):
        fills = [("BTCUSDT", "buy", "0.2")] if n % 10 == 0 else [("ETHUSDT", "sell", "0.5")]
        funded_account(usdt="2000", fills=fills)
    env = celery_env(
        REVALUATION_SHARD_SIZE=str(SHARD_SIZE), REVALUATION_TICK_TIMEOUT_S=str(TIMEOUT_S)
    )
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    # when: the first worker is SIGKILLed as soon as the tick's first shard is in
    with worker("first", env, tmp_path) as first:
        fresh_prices()
        revaluation_tick.delay()
        tick = wait_for(
            lambda: RevaluationTick.objects.first(), timeout=60, what="a tick", logs=logs
        )
        wait_for(
            lambda: tick.shards.filter(completed_at__isnull=False).exists(),
            timeout=60,
            what="a first shard",
            logs=logs,
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    interrupted = tick.shards.filter(completed_at__isnull=True).count()
    assert interrupted > 0, "the kill came after the tick was over"
    # then: a second worker finishes what was queued; the next tick covers every account
    with worker("second", env, tmp_path):
        time.sleep(TIMEOUT_S + 1)
        fresh_prices()
        revaluation_tick.delay()
        after = wait_for(
            lambda: RevaluationTick.objects.filter(
                pk__gt=tick.pk, status=RevaluationTick.Status.COMPLETE
            ).first(),
            timeout=90,
            what="the next tick to complete",
            logs=logs,
        )
        due = MarginAccount.objects.count() // 10
        wait_for(
            lambda: (
                Liquidation.objects.filter(status="done").values("account").distinct().count()
                >= due
            ),
            timeout=90,
            what="every due account liquidated",
            logs=logs,
        )
    tick.refresh_from_db()
    assert tick.status in (RevaluationTick.Status.ABANDONED, RevaluationTick.Status.COMPLETE)
    assert MarginSnapshot.objects.filter(tick=after).count() == ACCOUNTS
    # every shard of the interrupted tick wrote all of its accounts or none of them
    for shard in RevaluationShard.objects.filter(tick=tick):
        written = MarginSnapshot.objects.filter(
            tick=tick,
            account_id__gte=shard.first_account_id,
            account_id__lte=shard.last_account_id,
        ).count()
        assert written == (SHARD_SIZE if shard.completed_at else 0), shard.number
    # one liquidation per account and tick, and one liquidation fill per liquidation step
    assert not (
        Liquidation.objects.values("account", "tick").annotate(n=Count("pk")).filter(n__gt=1)
    )
    steps = sum(
        1
        for liquidation in Liquidation.objects.all()
        for step in liquidation.steps
        if step["action"] == "liquidation"
    )
    assert Fill.objects.filter(reason=Fill.Reason.LIQUIDATION).count() == steps
    assert Liquidation.objects.filter(status="done").values("account").distinct().count() == due

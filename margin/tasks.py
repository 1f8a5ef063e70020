from celery import shared_task
from django.utils import timezone

from margin.services.cascade import CASCADE_RUN_TASK, cascade_run_execute
from margin.services.liquidation import liquidation_run
from margin.services.notifications import NOTIFICATION_EMAIL_TASK, notification_email_send
from margin.services.ops import heartbeat_record
from margin.services.prices import market_tick_run, price_history_prune
from margin.services.proposals import proposals_expire
from margin.services.recalibration import recalibration_propose
from margin.services.revaluation import (
    revaluation_shard_run,
    revaluation_tick_start,
    snapshots_prune,
)


@shared_task(name="margin.heartbeat", ignore_result=True)
def heartbeat() -> None:
    heartbeat_record(name="heartbeat", worker=heartbeat.request.hostname or "")


# Revaluation: the demo market and price refresh, the tick, its shards, liquidations.


@shared_task(name="margin.market_tick", ignore_result=True)
def market_tick() -> None:
    market_tick_run(now=timezone.now())


@shared_task(name="margin.revaluation_tick", ignore_result=True)
def revaluation_tick() -> None:
    started = revaluation_tick_start(now=timezone.now())
    for shard_id in started.shard_ids:
        revaluation_shard.delay(shard_id)


@shared_task(name="margin.revaluation_shard", ignore_result=True, acks_late=True)
def revaluation_shard(shard_id: int) -> None:
    result = revaluation_shard_run(shard_id=shard_id)
    for account_id, tick_id in result.to_liquidate:
        liquidation.delay(account_id, tick_id)
    for notification_id in result.notifications:
        notification_email.delay(notification_id)


@shared_task(name="margin.liquidation", ignore_result=True, acks_late=True)
def liquidation(account_id: int, tick_id: int) -> None:
    liquidation_run(account_id=account_id, tick_id=tick_id)


@shared_task(name=NOTIFICATION_EMAIL_TASK, ignore_result=True, acks_late=True)
def notification_email(notification_id: int) -> None:
    notification_email_send(notification_id=notification_id)


@shared_task(name="margin.revaluation_prune", ignore_result=True)
def revaluation_prune() -> None:
    price_history_prune(now=timezone.now())
    snapshots_prune()


# Risk desk: cascade simulations and the expiry of four-eyes proposals.


@shared_task(name=CASCADE_RUN_TASK, ignore_result=True, acks_late=True)
def desk_cascade_run(run_id: int) -> None:
    cascade_run_execute(run_id=run_id)


@shared_task(name="margin.desk_proposals_expire", ignore_result=True)
def desk_proposals_expire() -> None:
    proposals_expire(now=timezone.now())


@shared_task(name="margin.recalibration", ignore_result=True)
def recalibration() -> None:
    recalibration_propose(now=timezone.now())

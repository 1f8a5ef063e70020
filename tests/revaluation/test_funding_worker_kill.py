"""A worker SIGKILLed in the middle of a funding settlement, with real workers on the real
broker: the dispatcher claimed the funding time, the shard's settlement it killed leaves
nothing, and the next tick (after the interrupted one is abandoned) books it once."""

import os
import signal
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from margin.models import (
    FundingPayment,
    FundingRate,
    Journal,
    JournalKind,
    LedgerAccount,
    Position,
    RevaluationTick,
)
from margin.selectors.ledger import ledger_differences
from margin.services.reference import reference_data_ensure
from margin.tasks import revaluation_tick
from tests.celery_procs import celery_env, wait_for
from tests.revaluation.factories import funded_account, market_prices
from tests.revaluation.test_worker_kill import worker

pytestmark = [pytest.mark.celery_live, pytest.mark.django_db(transaction=True)]


def _dsn() -> str:
    params = connection.settings_dict
    return (
        f"host={params.get('HOST') or '127.0.0.1'} port={params.get('PORT') or 5432} "
        f"dbname={params['NAME']} user={params['USER']}"
    )


TIMEOUT_S = 5


def _settlement_waiting(probe: psycopg.Connection) -> bool:
    """A backend is blocked on a row lock while it books the settlement (its entries check
    the funding account's row, which the blocker holds)."""
    return bool(
        probe.execute(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%FROM funding_payer%'"
        ).fetchone()
    )


def test_a_worker_killed_mid_settlement_books_the_funding_once(tmp_path):
    # given: ten accounts long or short BTC (more long than short: the funding account takes
    # the difference), and a funding time after they opened and before the tick
    reference_data_ensure()
    market_prices(at=timezone.now(), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    for n in range(10):
        side, size = ("buy", "0.1") if n % 2 else ("sell", "0.05")
        funded_account(usdt="5000", fills=[("BTCUSDT", side, size)])
    anchor = timezone.now().isoformat()
    env = celery_env(
        FUNDING_ANCHOR=anchor,
        DEMO_MARKET_ENABLED="true",
        DEMO_MARKET_SPEED="60",
        REVALUATION_TICK_TIMEOUT_S=str(TIMEOUT_S),
    )
    logs = [tmp_path / "first.log"]
    funding_account = LedgerAccount.objects.get(kind="funding", asset__symbol="USDT")
    # and another session holding the funding account's row: the shard's settlement will block
    # on it once it has written its journal
    with psycopg.connect(_dsn()) as blocker, psycopg.connect(_dsn(), autocommit=True) as probe:
        blocker.execute(
            "SELECT id FROM margin_ledgeraccount WHERE id = %s FOR UPDATE", [funding_account.pk]
        )
        # when: the first worker is SIGKILLed while its settlement waits for that row
        with worker("first", env, tmp_path) as first:
            market_prices(at=timezone.now(), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
            revaluation_tick.delay()
            wait_for(
                lambda: _settlement_waiting(probe),
                timeout=60,
                what="the settlement to block",
                logs=logs,
            )
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        blocker.rollback()
    # then: the funding time is claimed and still open; nothing of the settlement is left
    (rate,) = FundingRate.objects.filter(instrument__symbol="BTCUSDT")
    assert rate.completed_at is None
    assert not FundingPayment.objects.exists()
    assert not Journal.objects.filter(kind=JournalKind.FUNDING).exists()
    # when: a second worker runs the next tick, once the interrupted one is overdue
    with worker("second", env, tmp_path):
        time.sleep(TIMEOUT_S + 1)
        market_prices(at=timezone.now(), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
        revaluation_tick.delay()
        wait_for(
            lambda: FundingRate.objects.filter(completed_at__isnull=False).exists(),
            timeout=90,
            what="the funding",
            logs=logs,
        )
        revaluation_tick.delay()  # and a replay of the same funding time
        wait_for(
            lambda: RevaluationTick.objects.filter(status="complete").count() == 2,
            timeout=30,
            what="the replayed tick",
            logs=logs,
        )
    # then: every position paid or received once, and the ledger balances
    positions = Position.objects.exclude(quantity=0).count()
    assert FundingPayment.objects.count() == positions == 10
    assert FundingPayment.objects.values("position").distinct().count() == positions
    assert FundingRate.objects.filter(instrument__symbol="BTCUSDT").count() == 1
    # one journal: the accounts are in one shard
    assert Journal.objects.filter(kind=JournalKind.FUNDING).count() == 1
    funding_account.refresh_from_db()
    assert sum(p.amount for p in FundingPayment.objects.all()) == -funding_account.balance != 0
    assert ledger_differences().clean

"""The lock order (ARCHITECTURE.md, "Lock order") held under real concurrency on PostgreSQL:
the transactions that deadlocked in the load test (liquidations paying into and drawing on the
insurance fund; market ticks overlapping) and in the expiry benchmark (shards settling at
once), run against each other many times, meet no deadlock: no transaction is a victim, none
needs running again."""

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from psycopg.errors import DeadlockDetected

from margin.models import (
    AssetPriceHistory,
    Entry,
    Fill,
    Instrument,
    Journal,
    JournalKind,
    LedgerAccountKind,
    Liquidation,
    Position,
)
from margin.selectors.ledger import ledger_differences
from margin.services.liquidation import insurance_fund_deposit, liquidation_run
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from margin.services.prices import market_tick_run
from margin.services.revaluation import (
    revaluation_shard_run,
    revaluation_tick_run,
    revaluation_tick_start,
)
from tests.options_support import options_listed, series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 6
TICKS_PER_THREAD = 60
SHARDS = 3
ACCOUNTS_PER_SHARD = 2


def _attempt(call, counts: Counter) -> None:
    """`call()`, a deadlock's victim counted (and the transaction rolled back whole)."""
    try:
        call()
    except OperationalError as error:
        if not isinstance(error.__cause__, DeadlockDetected):
            raise
        counts["deadlocks"] += 1


def _at_once(*targets) -> None:
    """Each target on a thread and a connection of its own, all at once; back when all are."""

    def run(target) -> None:
        try:
            # Each wait past deadlock_timeout is logged with both statements
            # (/var/log/postgresql/): only for this test's sessions.
            with connection.cursor() as cursor:
                cursor.execute("SET log_lock_waits = on")
            target()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)


def test_liquidations_paying_the_fund_and_drawing_on_it_at_once_never_deadlock(market, later):
    # given, each round: three accounts past their line with margin left (their fills pay the
    # clearance fee to the insurance fund, the fill's cash to the market account) and three
    # bankrupt ones (their fills move the market account only, then the fund pays the deficit)
    insurance_fund_deposit(amount=Decimal("100000"), memo="seed the fund")
    counts: Counter = Counter()
    for round_ in range(ROUNDS):
        at = 10 * round_
        market_prices(at=later(at), BTC=95000, SOL=230, USDT=1)
        accounts = [
            funded_account(usdt="12000", fills=[("SOLUSDT", "buy", "500")]) for _ in range(3)
        ] + [funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")]) for _ in range(3)]
        market_prices(at=later(at + 2), BTC=84000, SOL=208, USDT=1)
        tick = revaluation_tick_run(now=later(at + 3)).start.tick
        go = threading.Barrier(len(accounts))

        def liquidate(account, tick=tick, go=go, at=at) -> None:
            go.wait()
            liquidation_run(account_id=account.pk, tick_id=tick.pk, now=later(at + 3))
            counts["liquidations"] += 1

        # when
        _at_once(
            *(lambda a=account: _attempt(lambda: liquidate(a), counts) for account in accounts)
        )
    # then
    print(f"{ROUNDS} rounds of 6 liquidations at once: {dict(counts)}")
    assert counts["deadlocks"] == 0
    assert counts["liquidations"] == 6 * ROUNDS
    assert Liquidation.objects.filter(insurance_cover__gt=0).count() >= ROUNDS
    assert ledger_differences().clean


def test_market_ticks_that_overlap_never_deadlock(market, settings):
    # given: the demo market on; two workers each running market ticks back to back, as the
    # beat's one-second ticks overlap when a tick takes longer than a second
    settings.DEMO_MARKET_ENABLED = True
    counts: Counter = Counter()

    def tick(n: int) -> None:
        market_tick_run(now=market + timedelta(seconds=n))
        counts["ticks"] += 1

    def ticks() -> None:
        for n in range(TICKS_PER_THREAD):
            _attempt(lambda n=n: tick(n), counts)

    # when
    _at_once(ticks, ticks)
    # then
    print(f"{counts['ticks']} market ticks on two threads: {dict(counts)}")
    assert counts["deadlocks"] == 0
    assert counts["ticks"] == 2 * TICKS_PER_THREAD


def test_shards_settling_expiries_at_once_never_deadlock(market, settings, later):
    # given: accounts in three shards; each round, every account holds a call, a put and the
    # live BTC future, one account a shard an isolated long that loses more than its margin
    # at the settlement, so every shard's journal has a line on the market account and one on
    # the insurance fund's (the rows two shards deadlocked on when FOR UPDATE locked them)
    settings.REVALUATION_SHARD_SIZE = ACCOUNTS_PER_SHARD
    options_listed(settings, now=market)
    insurance_fund_deposit(amount=Decimal("100000"), memo="seed the fund")
    accounts = [funded_account(usdt="60000") for _ in range(SHARDS * ACCOUNTS_PER_SHARD)]
    counts: Counter = Counter()
    for round_ in range(ROUNDS):
        at = 100 * round_
        market_prices(at=later(at), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
        future = (
            Instrument.objects.filter(kind=Instrument.Kind.FUTURE, underlying__symbol="BTC")
            .filter(is_active=True)
            .order_by("expiry")
            .first()
        )
        call, put = series("call", 90000 + 2000 * round_), series("put", 102000 - 2000 * round_)
        for n, account in enumerate(accounts):
            # longs of 0.2 and shorts of 0.1: a shard's payments to the market do not net out
            side, quantity = (("buy", "0.2"), ("sell", "0.1"))[n % 2]
            for instrument in (call, put, future):
                position_market_fill(
                    account=account,
                    instrument=instrument.symbol,
                    side=side,
                    quantity=Decimal(quantity),
                    idempotency_key=f"test-expiry-{round_}-{n}-{instrument.pk}",
                )
            if n % ACCOUNTS_PER_SHARD == 0:
                position_margin_mode_switch(
                    account=account,
                    instrument=future.symbol,
                    mode="isolated",
                    isolated_margin=Decimal(2000),
                    idempotency_key=f"test-expiry-isolate-{round_}-{n}",
                )
        # and the three expire together, settling on an index TWAP near 74,000
        expiry = later(at + 50)
        Instrument.objects.filter(pk__in=[call.pk, put.pk, future.pk]).update(expiry=expiry)
        AssetPriceHistory.objects.create(
            asset=future.underlying, at=expiry - timedelta(seconds=25), price=70000
        )
        start = revaluation_tick_start(now=expiry + timedelta(seconds=1))
        assert len(start.shard_ids) == SHARDS
        go = threading.Barrier(SHARDS)

        def settle(shard_id, go=go) -> None:
            go.wait()
            settled = revaluation_shard_run(shard_id=shard_id).expiry_positions
            counts["expiry positions"] += settled
            counts["shards"] += 1

        # when: the tick's shards settle at once
        _at_once(
            *(
                lambda s=shard_id: _attempt(lambda: settle(s), counts)
                for shard_id in start.shard_ids
            )
        )
    # then: no deadlock victim; every position settled once, by one journal a shard a round
    print(f"{ROUNDS} rounds of {SHARDS} shards settling at once: {dict(counts)}")
    assert counts["deadlocks"] == 0
    assert counts["shards"] == SHARDS * ROUNDS
    held = Position.objects.filter(instrument__kind__in=["future", "option"])
    assert not held.exclude(quantity=0).exists()
    assert counts["expiry positions"] == held.count() == 3 * len(accounts) * ROUNDS
    settlements = Fill.objects.filter(reason=Fill.Reason.SETTLEMENT)
    assert sorted(settlements.values_list("position_id", flat=True)) == sorted(
        held.values_list("pk", flat=True)
    )
    journals = Journal.objects.filter(kind=JournalKind.SETTLEMENT)
    assert journals.count() == SHARDS * ROUNDS
    house = Entry.objects.filter(journal__in=journals, ledger_account__margin_account=None)
    assert sorted(house.values_list("ledger_account__kind", flat=True)) == sorted(
        [LedgerAccountKind.MARKET, LedgerAccountKind.INSURANCE] * SHARDS * ROUNDS
    )
    assert ledger_differences().clean

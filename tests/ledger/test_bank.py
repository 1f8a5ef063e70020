"""A bank test in the Jepsen style: thousands of concurrent operations against PostgreSQL,
concurrent readers checking every snapshot, and the end state held to an independent model.

Writers (each thread its own connection) draw deposits, withdrawals, fills, isolated margin
transfers and cross/isolated switches at random over a few shared accounts, so that they
contend for the same rows. Marks stay fixed, so every accepted operation's effect is known from
its request alone: fills realize no PnL and pay a fee of size × mark × rate; transfers move what
was asked. The one amount the model reads from a receipt is what a switch back to cross
releases (it is whatever the isolated account holds); the end state checks those releases
against everything that went in. A refused operation must leave no trace. Readers check that
every snapshot balances per asset and holds no negative wallet; at the end `ledger_differences`
proves every balance equals its entries.
"""

import random
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from psycopg.errors import DeadlockDetected

from margin.errors import ApplicationError
from margin.models import AssetPrice, LedgerAccount, MarkPrice, Position
from margin.selectors.ledger import ledger_differences
from margin.selectors.parameters import engine_terms
from margin.services.collateral import collateral_deposit, collateral_withdraw
from margin.services.margin_mode import (
    isolated_margin_add,
    isolated_margin_remove,
    position_margin_mode_switch,
)
from margin.services.positions import position_market_fill
from margin.services.reference import reference_data_ensure
from tests.factories import MarginAccountFactory
from tests.ledger.support import new_key

D = Decimal
WRITERS, READERS, ACCOUNTS = 8, 2, 16
OPERATIONS_PER_WRITER = 500
MARKS = {"BTCUSDT": D("100000"), "SOLUSDT": D("200"), "ETHUSDT": D("4000")}
PRICES = {"USDT": D("1"), "USDC": D("1"), "BTC": D("100000"), "ETH": D("4000"), "SOL": D("200")}
TRADED = ("BTCUSDT", "SOLUSDT")  # always cross: fills never touch isolated margin
SWITCHED = "ETHUSDT"  # opened once, then only switched and its isolated margin moved

type Model = dict[tuple, Decimal]


class Writer:
    """One thread's operations and its share of the model (summed with the others at the end)."""

    def __init__(self, seed: int, accounts: list, fee_rate: Decimal) -> None:
        self.random = random.Random(seed)
        self.accounts = accounts
        self.fee_rate = fee_rate
        self.model: Model = defaultdict(Decimal)
        self.counts: Counter = Counter()
        self.unexpected: list[BaseException] = []

    def run(self) -> None:
        try:
            for _ in range(OPERATIONS_PER_WRITER):
                self.one()
        finally:
            connection.close()

    def one(self) -> None:
        account = self.random.choice(self.accounts)
        operation = self.random.choices(
            [self.deposit, self.withdraw, self.fill, self.isolated, self.switch],
            weights=[20, 15, 35, 10, 20],
        )[0]
        try:
            operation(account)
            self.counts["done"] += 1
        except ApplicationError:
            self.counts["refused"] += 1
        except DatabaseError as error:
            if isinstance(error.__cause__, DeadlockDetected):
                self.counts["deadlocks"] += 1
            else:
                self.unexpected.append(error)
        except Exception as error:  # anything else fails the test, with its cause
            self.unexpected.append(error)

    def _amount(self, asset: str) -> D:
        scale = {"USDT": D("0.01"), "BTC": D("0.0001"), "ETH": D("0.001")}[asset]
        return self.random.randint(1, 400_000 if asset == "USDT" else 20_000) * scale

    def deposit(self, account) -> None:
        asset = self.random.choice(["USDT", "BTC", "ETH"])
        amount = self._amount(asset)
        collateral_deposit(account=account, asset=asset, amount=amount, idempotency_key=new_key())
        self.model["wallet", account.pk, asset] += amount
        self.model["external", asset] -= amount

    def withdraw(self, account) -> None:
        asset = self.random.choice(["USDT", "BTC", "ETH"])
        amount = self._amount(asset)
        collateral_withdraw(account=account, asset=asset, amount=amount, idempotency_key=new_key())
        self.model["wallet", account.pk, asset] -= amount
        self.model["external", asset] += amount

    def fill(self, account) -> None:
        instrument = self.random.choice(TRADED)
        size = self.random.randint(1, 60) * (D("0.001") if instrument == "BTCUSDT" else D("0.5"))
        side = self.random.choice(["buy", "sell"])
        position_market_fill(
            account=account,
            instrument=instrument,
            side=side,
            quantity=size,
            idempotency_key=new_key(),
        )
        fee = size * MARKS[instrument] * self.fee_rate
        self.model["wallet", account.pk, "USDT"] -= fee
        self.model["fees", "USDT"] += fee
        self.model["position", account.pk, instrument] += size if side == "buy" else -size

    def isolated(self, account) -> None:
        amount = self.random.randint(1, 3000) * D("0.1")
        adding = self.random.random() < 0.5
        service = isolated_margin_add if adding else isolated_margin_remove
        service(account=account, instrument=SWITCHED, amount=amount, idempotency_key=new_key())
        moved = amount if adding else -amount
        self.model["wallet", account.pk, "USDT"] -= moved
        self.model["isolated", account.pk] += moved

    def switch(self, account) -> None:
        if self.random.random() < 0.5:
            margin = self.random.randint(300, 3000) * D("1.5")
            position_margin_mode_switch(
                account=account,
                instrument=SWITCHED,
                mode="isolated",
                isolated_margin=margin,
                idempotency_key=new_key(),
            )
        else:
            receipt = position_margin_mode_switch(
                account=account, instrument=SWITCHED, mode="cross", idempotency_key=new_key()
            )
            margin = -D(receipt.details["isolated_margin"])
        self.model["wallet", account.pk, "USDT"] -= margin
        self.model["isolated", account.pk] += margin


class Reader:
    """Reads every balance in one REPEATABLE READ snapshot, again and again, and checks it."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.counts: Counter = Counter()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.check_one_snapshot()
                time.sleep(0.002)  # leave the writers some of the two CPUs a CI runner has
        finally:
            connection.close()

    def check_one_snapshot(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT asset_id, kind, balance FROM margin_ledgeraccount")
            rows = cursor.fetchall()
        per_asset: dict[int, D] = defaultdict(D)
        for asset_id, kind, balance in rows:
            per_asset[asset_id] += balance
            self.counts["negative wallets"] += kind in ("wallet", "isolated") and balance < 0
        self.counts["imbalanced reads"] += any(total != 0 for total in per_asset.values())
        self.counts["reads checked"] += 1


def _setup() -> tuple[list, Decimal, Model]:
    version = reference_data_ensure()
    for symbol, price in MARKS.items():
        MarkPrice.objects.filter(instrument__symbol=symbol).update(mark_price=price)
    for symbol, price in PRICES.items():
        AssetPrice.objects.filter(asset__symbol=symbol).update(price=price)
    fee_rate = engine_terms(version).taker_fee_rate
    accounts = [MarginAccountFactory() for _ in range(ACCOUNTS)]
    model: Model = defaultdict(D)
    for account in accounts:
        for asset, amount in (("USDT", D("20000")), ("BTC", D("0.2"))):
            collateral_deposit(
                account=account, asset=asset, amount=amount, idempotency_key=new_key()
            )
            model["wallet", account.pk, asset] += amount
            model["external", asset] -= amount
        position_market_fill(
            account=account,
            instrument=SWITCHED,
            side="buy",
            quantity=D("1"),
            idempotency_key=new_key(),
        )
        model["wallet", account.pk, "USDT"] -= MARKS[SWITCHED] * fee_rate
        model["fees", "USDT"] += MARKS[SWITCHED] * fee_rate
    return accounts, fee_rate, model


def _database_state() -> Model:
    state: Model = defaultdict(D)
    for kind, account_id, asset, balance in LedgerAccount.objects.values_list(
        "kind", "margin_account_id", "asset__symbol", "balance"
    ):
        if kind == "wallet":
            state["wallet", account_id, asset] += balance
        elif kind == "isolated":
            state["isolated", account_id] += balance
        else:
            state[kind, asset] += balance
    for account_id, symbol, quantity in Position.objects.filter(
        instrument__symbol__in=TRADED
    ).values_list("margin_account_id", "instrument__symbol", "quantity"):
        state["position", account_id, symbol] += quantity
    return {key: value for key, value in state.items() if value}


@pytest.mark.django_db(transaction=True)
def test_bank_concurrent_operations_keep_the_ledger_exact(caplog):
    # given 16 funded accounts, each with an ETH position to switch between cross and isolated
    accounts, fee_rate, model = _setup()
    stop = threading.Event()
    writers = [Writer(seed, accounts, fee_rate) for seed in range(WRITERS)]
    readers = [Reader(stop) for _ in range(READERS)]
    threads = [threading.Thread(target=r.run) for r in readers]
    writer_threads = [threading.Thread(target=w.run) for w in writers]
    started = time.monotonic()
    # when the writers run concurrently while the readers check snapshot after snapshot
    for thread in threads + writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # then
    counts = sum((w.counts for w in writers), Counter()) + sum(
        (r.counts for r in readers), Counter()
    )
    for writer in writers:
        for key, delta in writer.model.items():
            model[key] += delta
    print(
        f"\nbank test: {counts['done'] + counts['refused']} operations in {elapsed:.1f} s "
        f"({counts['done']} done, {counts['refused']} refused), {counts['deadlocks']} deadlocks; "
        f"{counts['reads checked']} snapshots read: {counts['imbalanced reads']} imbalanced, "
        f"{counts['negative wallets']} negative wallets"
    )
    assert [e for w in writers for e in w.unexpected] == []
    assert counts["done"] + counts["refused"] == WRITERS * OPERATIONS_PER_WRITER
    assert counts["done"] > 2_000 and counts["refused"] > 100
    assert counts["deadlocks"] == 0
    # a write is run again when it loses a deadlock; the lock order means none ever does
    assert [r.message for r in caplog.records if "deadlock" in r.message] == []
    assert counts["reads checked"] > 0
    assert counts["imbalanced reads"] == 0
    assert counts["negative wallets"] == 0
    assert _database_state() == {key: value for key, value in model.items() if value}
    assert ledger_differences().clean

"""Funding settlement: at each funding time every open perpetual position pays or receives
−side × |quantity| × mark × rate (Binance USD-M), longs to shorts through the funding clearing
account, in the settlement asset.

In the revaluation tick it runs in two steps. The dispatcher claims the funding times that have
passed (`funding_claim_due`: the `FundingRate` rows, inserted with ON CONFLICT DO NOTHING, so a
replayed tick claims nothing twice) and hands the open rates to the tick; each shard then
settles its own accounts (`funding_settle_accounts`) in its own transaction, before it reads
its book, so it values every account after its funding: a payment moves account states,
margin calls and liquidations like any other loss. The shards settle in parallel, in their
workers. A position is paid at most once per rate (a unique index, and each settlement skips
the positions already paid): a shard run again, or the next tick after an abandoned one (the
rates stay open until a tick that settled them completes), pays only what is still owed.
`funding_settle_due` does both steps at once for every account (tests, the benchmark's
catch-up, a scenario's step).

One journal per settlement (a shard's accounts): one line per paying ledger account (an
account's cross wallet for all its cross positions; the isolated margin of an isolated
position) and one line on the funding account for their sum, so the journal balances and the
funding account holds exactly what the book's longs and shorts did not settle between
themselves (the simulated market's side of the open interest). Amounts are the engine's
Decimal reference (`margin.engine.funding.funding_payment`): exact NUMERIC in set-based SQL on
PostgreSQL, Python on SQLite.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q

from margin.db import execute, rows, table
from margin.engine.funding import funding_payment
from margin.models import (
    Asset,
    Entry,
    Fill,
    FundingPayment,
    FundingRate,
    Instrument,
    Journal,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    MarginMode,
    MarkPrice,
    MarkPriceHistory,
    Position,
)
from margin.selectors.funding import (
    funding_interval,
    funding_rate_working,
    funding_rates_open,
    funding_time_due,
)
from margin.services.bulk import balances_add, bulk_write, new_ids
from margin.services.ledger import wallets_ensure, wallets_ensure_in_sql

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FundingSettled:
    rates: list[FundingRate]
    positions: int = 0
    journals: int = 0


def _mark_at(instrument: Instrument, at: datetime) -> tuple[Decimal, Decimal] | None:
    """(mark, index) of the instrument at `at`: its last price history row not after it, or
    its current mark when the history has none."""
    row = (
        MarkPriceHistory.objects.filter(instrument=instrument, at__lte=at)
        .order_by("-at", "-pk")
        .values_list("mark_price", "index_price")
        .first()
    )
    if row is None:
        row = (
            MarkPrice.objects.filter(instrument=instrument)
            .values_list("mark_price", "index_price")
            .first()
        )
    return row


def _due_rates(*, now: datetime) -> list[FundingRate]:
    """The FundingRate of each perpetual whose latest funding time has passed and is not
    settled yet, worked out but not saved."""
    due = []
    perpetuals = Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL, is_active=True)
    settled = set(
        FundingRate.objects.filter(instrument__in=perpetuals).values_list(
            "instrument_id", "funding_time"
        )
    )
    for instrument in perpetuals.order_by("pk"):
        at = funding_time_due(instrument, now=now)
        if (instrument.pk, at) in settled:
            continue
        prices = _mark_at(instrument, at)
        if prices is None:
            continue  # never priced: nothing can be open on it
        working = funding_rate_working(
            instrument, since=at - funding_interval(instrument), until=at
        )
        due.append(
            FundingRate(
                instrument=instrument,
                funding_time=at,
                average_premium=working.average_premium,
                interest=working.interest,
                rate=working.rate,
                samples=working.samples,
                mark_price=prices[0],
                index_price=prices[1],
                settled_at=now,
            )
        )
    return due


def _claim(candidates: list[FundingRate]) -> list[FundingRate]:
    """Insert the rates; keep those this transaction inserted (a concurrent or earlier run
    owns the others)."""
    claimed = []
    for rate in candidates:
        inserted = rows(
            f"INSERT INTO {table(FundingRate)} (instrument_id, funding_time, average_premium, "
            "interest, rate, samples, mark_price, index_price, settled_at, positions, "
            "paid_by_longs) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0) "
            "ON CONFLICT (instrument_id, funding_time) DO NOTHING RETURNING id",
            [
                rate.instrument_id,
                rate.funding_time,
                rate.average_premium,
                rate.interest,
                rate.rate,
                rate.samples,
                rate.mark_price,
                rate.index_price,
                rate.settled_at,
            ],
        )
        if inserted:
            rate.pk = inserted[0][0]
            claimed.append(rate)
    return claimed


def _moved_after(claimed: list[FundingRate]) -> dict[int, Decimal]:
    """Position id → the signed quantity its fills added after its instrument's funding time
    (the fills between the funding time and this settlement): its size at the funding time is
    its size now less that."""
    funding_time = {rate.instrument_id: rate.funding_time for rate in claimed}
    moved: dict[int, Decimal] = defaultdict(Decimal)
    for position_id, instrument_id, quantity, at in Fill.objects.filter(
        position__instrument_id__in=list(funding_time),
        created_at__gt=min(funding_time.values()),
    ).values_list("position_id", "position__instrument_id", "quantity", "created_at"):
        if at > funding_time[instrument_id]:
            moved[position_id] += quantity
    return moved


def _paid_already(claimed: list[FundingRate], accounts: tuple[int, int]) -> set[tuple[int, int]]:
    """(position, rate) of the positions of `accounts` already paid at these rates."""
    return set(
        FundingPayment.objects.filter(
            funding_rate_id__in=[rate.pk for rate in claimed],
            position__margin_account_id__gte=accounts[0],
            position__margin_account_id__lte=accounts[1],
        ).values_list("position_id", "funding_rate_id")
    )


def _held_at_funding_time(
    claimed: list[FundingRate], settlement_id: int, accounts: tuple[int, int]
) -> list[tuple[int, int, FundingRate, Decimal, int]]:
    """(position, account, rate, quantity at the funding time, ledger account paying) of every
    position of `accounts` open at its funding time and not paid yet, on the engine's Decimals
    (SQLite keeps NUMERIC as a float). An open isolated position pays from its isolated margin;
    a cross one, or one closed since the funding time (its isolated margin went back to the
    wallet), from the wallet."""
    by_instrument = {rate.instrument_id: rate for rate in claimed}
    moved = _moved_after(claimed)
    paid = _paid_already(claimed, accounts)
    held = []
    for position_id, account_id, instrument_id, quantity, mode in (
        Position.objects.filter(
            instrument_id__in=list(by_instrument),
            margin_account_id__gte=accounts[0],
            margin_account_id__lte=accounts[1],
        )
        .filter(~Q(quantity=0) | Q(pk__in=list(moved)))
        .order_by("pk")
        .values_list("pk", "margin_account_id", "instrument_id", "quantity", "margin_mode")
    ):
        rate = by_instrument[instrument_id]
        at_funding = quantity - moved.get(position_id, Decimal(0))
        if at_funding and (position_id, rate.pk) not in paid:
            isolated = mode == MarginMode.ISOLATED and quantity != 0
            held.append((position_id, account_id, rate, at_funding, isolated))
    wallet_of = wallets_ensure(
        margin_account_ids=[account_id for _, account_id, _, _, isolated in held if not isolated],
        asset_id=settlement_id,
    )
    isolated_of = dict(
        LedgerAccount.objects.filter(
            asset_id=settlement_id, position_id__in=[h[0] for h in held if h[4]]
        ).values_list("position_id", "pk")
    )
    paying = []
    for position_id, account_id, rate, quantity, isolated in held:
        ledger_id = isolated_of.get(position_id) if isolated else wallet_of.get(account_id)
        if ledger_id is not None:
            paying.append((position_id, account_id, rate, quantity, ledger_id))
    return paying


ALL_ACCOUNTS = (0, 2**63 - 1)


def _funding_account(settlement: Asset) -> int:
    return LedgerAccount.objects.get_or_create(
        kind=LedgerAccountKind.FUNDING, asset=settlement, margin_account=None
    )[0].pk


@transaction.atomic
def funding_claim_due(*, now: datetime) -> list[int]:
    """Claim every perpetual's funding time that has passed and is not claimed yet; return the
    ids of every rate still open (claimed now, or by a tick that never completed), for the
    revaluation shards to settle."""
    _claim(_due_rates(now=now))
    _funding_account(Asset.objects.get(is_settlement=True))
    return funding_rates_open()


@transaction.atomic
def funding_settle_accounts(
    *, rate_ids: list[int], first_account_id: int, last_account_id: int, now: datetime
) -> FundingSettled:
    """Settle the open rates among `rate_ids` for the accounts with ids in [first, last] (a
    revaluation shard's), paying only the positions not paid yet."""
    rates = list(
        FundingRate.objects.filter(pk__in=rate_ids, completed_at__isnull=True)
        .select_related("instrument")
        .order_by("pk")
    )
    return _settle(rates, accounts=(first_account_id, last_account_id), now=now)


@transaction.atomic
def funding_settle_due(*, now: datetime) -> FundingSettled:
    """Claim and settle, for every account at once, each perpetual's funding time that has
    passed and is not claimed yet."""
    claimed = _claim(_due_rates(now=now))
    settled = _settle(claimed, accounts=ALL_ACCOUNTS, now=now)
    funding_rates_complete(rate_ids=[rate.pk for rate in claimed], now=now)
    return settled


def funding_rates_complete(*, rate_ids: list[int], now: datetime) -> int:
    """Close the rates: every account has been settled at them (the tick that settled them
    completed)."""
    return FundingRate.objects.filter(pk__in=rate_ids, completed_at__isnull=True).update(
        completed_at=now
    )


def _settle(rates: list[FundingRate], *, accounts: tuple[int, int], now) -> FundingSettled:
    if not rates:
        return FundingSettled(rates=[])
    started = time.perf_counter()
    settlement = Asset.objects.get(is_settlement=True)
    memo = "funding " + ", ".join(f"{r.instrument.symbol} {r.rate * 100:.4f}%" for r in rates)
    post = _post_in_sql if connection.vendor == "postgresql" else _post_in_python
    positions, journals = post(
        rates,
        settlement_id=settlement.pk,
        funding_account=_funding_account(settlement),
        memo=memo[:200],
        now=now,
        accounts=accounts,
    )
    for rate in rates:  # the totals as the database now holds them, every settlement's
        rate.refresh_from_db(fields=["positions", "paid_by_longs"])
    logger.info(
        "funding settled for accounts %s-%s at rates %s: %s positions in %.2f s",
        *accounts,
        [rate.pk for rate in rates],
        positions,
        time.perf_counter() - started,
    )
    return FundingSettled(rates=rates, positions=positions, journals=journals)


def _post_in_python(
    claimed: list[FundingRate],
    *,
    settlement_id: int,
    funding_account: int,
    memo: str,
    now,
    accounts: tuple[int, int],
) -> tuple[int, int]:
    """SQLite (the embedded demo's small book): the payments worked out here, with the engine's
    Decimal reference, and written row by row."""
    payments = []  # (position, rate, ledger account, amount)
    positions: dict[int, int] = defaultdict(int)
    paid_by_longs: dict[int, Decimal] = defaultdict(Decimal)
    for position_id, _, rate, quantity, ledger_id in _held_at_funding_time(
        claimed, settlement_id, accounts
    ):
        amount = funding_payment(quantity=quantity, mark_price=rate.mark_price, rate=rate.rate)
        if amount:
            payments.append((position_id, rate.pk, ledger_id, amount))
            if quantity > 0:
                paid_by_longs[rate.pk] -= amount
            positions[rate.pk] += 1
    if not payments:
        return 0, 0
    (journal,) = new_ids(Journal, 1)
    bulk_write(
        Journal,
        ["id", "kind", "margin_account_id", "created_at", "memo"],
        [(journal, JournalKind.FUNDING, None, now, memo)],
    )
    per_ledger: dict[int, Decimal] = defaultdict(Decimal)
    for _, _, ledger_id, amount in payments:
        per_ledger[ledger_id] += amount
    lines = {ledger: amount for ledger, amount in per_ledger.items() if amount}
    total = sum(lines.values(), Decimal(0))
    if total:
        lines[funding_account] = lines.get(funding_account, Decimal(0)) - total
    bulk_write(
        Entry,
        ["journal_id", "ledger_account_id", "asset_id", "amount"],
        [(journal, ledger, settlement_id, amount) for ledger, amount in sorted(lines.items())],
    )
    bulk_write(
        FundingPayment,
        ["funding_rate_id", "position_id", "journal_id", "amount"],
        [(rate, position, journal, amount) for position, rate, _, amount in payments],
    )
    balances_add(lines)
    for rate in claimed:
        if positions[rate.pk]:
            FundingRate.objects.filter(pk=rate.pk).update(
                positions=F("positions") + positions[rate.pk],
                paid_by_longs=F("paid_by_longs") + paid_by_longs[rate.pk],
            )
    return len(payments), 1


def _post_in_sql(
    claimed: list[FundingRate],
    *,
    settlement_id: int,
    funding_account: int,
    memo: str,
    now,
    accounts: tuple[int, int],
) -> tuple[int, int]:
    """PostgreSQL: set-based in exact NUMERIC, the same rule as the engine's reference
    (round(−quantity × mark × rate, 8), a tie away from zero), no row through Python.

    Constraints are checked after each statement (SET CONSTRAINTS ALL IMMEDIATE) rather than
    at commit, and the rows every settlement shares (the rates' totals, the funding account's
    balance) are updated last: shards settling in parallel then hold those locks for their last
    statements and their commit only, not through each other's foreign-key checks."""
    rate_ids = [rate.pk for rate in claimed]
    marks = ", ".join(["%s"] * len(rate_ids))
    first, last = accounts
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    # The hash tables of a 25,000-account shard's payments spill to disk at the default 4 MB.
    execute("SET LOCAL work_mem = '64MB'")
    execute(
        f"SELECT p.id FROM {table(Position)} p JOIN {table(FundingRate)} fr "
        f"ON fr.instrument_id = p.instrument_id WHERE fr.id IN ({marks}) AND p.quantity <> 0 "
        "AND p.margin_mode = %s AND p.margin_account_id BETWEEN %s AND %s "
        "ORDER BY p.id FOR UPDATE OF p",
        [*rate_ids, MarginMode.ISOLATED, first, last],
    )
    # Each position's size at its funding time: its size now less what its fills added since
    # (a position opened after the funding time held nothing at it, one closed since held its
    # size). The fills since the earliest funding time come from the created_at index. A
    # position paid at the rate already (by an earlier run over these accounts) is left out.
    execute(
        "CREATE TEMP TABLE funding_held ON COMMIT DROP AS "
        "SELECT p.id AS position_id, p.margin_account_id AS account_id, fr.id AS rate_id, "
        "p.quantity - COALESCE(m.quantity, 0) AS quantity, fr.mark_price, fr.rate, "
        "(p.margin_mode = %s AND p.quantity <> 0) AS isolated "
        f"FROM {table(Position)} p JOIN {table(FundingRate)} fr "
        f"ON fr.instrument_id = p.instrument_id AND fr.id IN ({marks}) "
        "LEFT JOIN (SELECT f.position_id, sum(f.quantity) AS quantity "
        f"FROM {table(Fill)} f JOIN {table(Position)} fp ON fp.id = f.position_id "
        f"JOIN {table(FundingRate)} ffr ON ffr.instrument_id = fp.instrument_id "
        f"AND ffr.id IN ({marks}) WHERE f.created_at > %s AND f.created_at > ffr.funding_time "
        "AND fp.margin_account_id BETWEEN %s AND %s "
        "GROUP BY f.position_id) m ON m.position_id = p.id "
        "WHERE p.margin_account_id BETWEEN %s AND %s "
        "AND p.quantity - COALESCE(m.quantity, 0) <> 0 "
        f"AND NOT EXISTS (SELECT 1 FROM {table(FundingPayment)} paid "
        "WHERE paid.position_id = p.id AND paid.funding_rate_id = fr.id)",
        [
            MarginMode.ISOLATED,
            *rate_ids,
            *rate_ids,
            min(rate.funding_time for rate in claimed),
            first,
            last,
            first,
            last,
        ],
    )
    # Cross positions, and positions closed since, pay from the settlement-asset wallet.
    wallets_ensure_in_sql(
        holders="SELECT account_id FROM funding_held WHERE NOT isolated",
        asset_id=settlement_id,
        accounts=accounts,
    )
    # The shard's ledger accounts are read by their margin account's id range (an index
    # range scan, not the whole table), in every statement below.
    pick = (
        "SELECT h.position_id, h.rate_id, la.id AS ledger_id, h.quantity, "
        "round(-h.quantity * h.mark_price * h.rate, 8) AS amount FROM funding_held h "
        f"JOIN {table(LedgerAccount)} la ON la.margin_account_id BETWEEN %s AND %s "
        "AND la.asset_id = %s AND "
    )
    execute(
        "CREATE TEMP TABLE funding_due ON COMMIT DROP AS "
        f"{pick} la.position_id = h.position_id WHERE h.isolated "
        f"UNION ALL {pick} la.margin_account_id = h.account_id AND la.kind = %s "
        "AND la.position_id IS NULL WHERE NOT h.isolated",
        [first, last, settlement_id, first, last, settlement_id, LedgerAccountKind.WALLET],
    )
    execute("DELETE FROM funding_due WHERE amount = 0")
    execute(
        "CREATE TEMP TABLE funding_payer ON COMMIT DROP AS SELECT ledger_id, sum(amount) AS amount "
        "FROM funding_due GROUP BY ledger_id HAVING sum(amount) <> 0"
    )
    positions = rows("SELECT count(*) FROM funding_due")[0][0]
    if positions:
        journal = rows(
            f"INSERT INTO {table(Journal)} (kind, created_at, memo) VALUES (%s, %s, %s) "
            "RETURNING id",
            [JournalKind.FUNDING, now, memo],
        )[0][0]
        # The payers' rows locked in id order first (their entries' foreign-key checks then
        # find them locked already); the rows every settlement shares come last.
        execute(
            f"SELECT la.id FROM {table(LedgerAccount)} la JOIN funding_payer p "
            "ON p.ledger_id = la.id WHERE la.margin_account_id BETWEEN %s AND %s "
            "ORDER BY la.id FOR UPDATE OF la",
            [first, last],
        )
        # One statement for both sides: the ledger's balance check runs after it.
        execute(
            f"INSERT INTO {table(Entry)} (journal_id, ledger_account_id, asset_id, amount) "
            "SELECT %s, ledger_id, %s, amount FROM funding_payer "
            "UNION ALL SELECT %s, %s, %s, -sum(amount) FROM funding_payer "
            "HAVING sum(amount) <> 0",
            [journal, settlement_id, journal, funding_account, settlement_id],
        )
        execute(
            f"INSERT INTO {table(FundingPayment)} (funding_rate_id, position_id, journal_id, "
            "amount) SELECT rate_id, position_id, %s, amount FROM funding_due",
            [journal],
        )
        execute(
            f"UPDATE {table(LedgerAccount)} la SET balance = la.balance + p.amount "
            "FROM funding_payer p WHERE la.id = p.ledger_id "
            "AND la.margin_account_id BETWEEN %s AND %s",
            [first, last],
        )
        execute(
            f"SELECT id FROM {table(FundingRate)} WHERE id IN ({marks}) ORDER BY id FOR UPDATE",
            rate_ids,
        )
        execute(
            f"UPDATE {table(FundingRate)} fr SET positions = fr.positions + c.n, "
            "paid_by_longs = fr.paid_by_longs + c.longs "
            "FROM (SELECT rate_id, count(*) AS n, "
            "COALESCE(-sum(amount) FILTER (WHERE quantity > 0), 0) AS longs "
            "FROM funding_due GROUP BY rate_id) c WHERE fr.id = c.rate_id"
        )
        execute(
            f"UPDATE {table(LedgerAccount)} SET balance = balance - "
            "(SELECT COALESCE(sum(amount), 0) FROM funding_payer) WHERE id = %s",
            [funding_account],
        )
    execute("DROP TABLE funding_held, funding_due, funding_payer")
    execute("SET CONSTRAINTS ALL DEFERRED")  # every deferrable constraint is initially deferred
    return positions, 1 if positions else 0

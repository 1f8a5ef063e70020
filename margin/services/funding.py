"""Funding settlement: at each funding time every open perpetual position pays or receives
−side × |quantity| × mark × rate (Binance USD-M), longs to shorts through the funding clearing
account, in the settlement asset.

`funding_settle_due` runs in the revaluation dispatcher before the tick freezes its prices, so
the tick that follows a funding time values every account after its funding: a payment moves
account states, margin calls and liquidations like any other loss.

One transaction for every perpetual due at once. Its `FundingRate` rows are inserted first with
ON CONFLICT DO NOTHING: a replayed tick, or a dispatcher that died and was run again, finds
them and books nothing twice (a dispatcher killed before commit left nothing behind). Per
account one journal: a line on its cross wallet for its cross positions together, one on the
isolated margin of each isolated position, and the funding account's opposite line, so every
journal balances and the funding account holds exactly what the book's longs and shorts did
not settle between themselves (the simulated market's side of the open interest). Amounts are
the engine's Decimal reference (`margin.engine.funding.funding_payment`), written in bulk (COPY
on PostgreSQL).
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from margin.engine.funding import funding_payment
from margin.market.funding import funding_interval, funding_rate_working, funding_time_due
from margin.models import (
    Asset,
    Entry,
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
from margin.services.bulk import bulk_write, new_ids
from margin.services.sql import execute, rows, table

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


def _open_positions(instrument_ids: list[int], settlement_id: int) -> list[tuple]:
    """(position, account, instrument, quantity, ledger account paying) of every open position
    on the instruments. Isolated positions are locked first (by id): a close concurrent with the
    settlement must not leave a payment on an isolated margin it already handed back."""
    marks = ", ".join(["%s"] * len(instrument_ids))
    execute(
        f"SELECT id FROM {table(Position)} WHERE instrument_id IN ({marks}) "
        f"AND quantity <> 0 AND margin_mode = %s ORDER BY id FOR UPDATE",
        [*instrument_ids, MarginMode.ISOLATED],
    )
    # Cross positions pay from the settlement-asset wallet; create the missing ones.
    execute(
        f"INSERT INTO {table(LedgerAccount)} (kind, asset_id, margin_account_id, balance) "
        f"SELECT DISTINCT %s, %s, p.margin_account_id, 0 FROM {table(Position)} p "
        f"WHERE p.instrument_id IN ({marks}) AND p.quantity <> 0 AND p.margin_mode = %s "
        "ON CONFLICT DO NOTHING",
        [LedgerAccountKind.WALLET, settlement_id, *instrument_ids, MarginMode.CROSS],
    )
    return rows(
        f"SELECT p.id, p.margin_account_id, p.instrument_id, p.quantity, la.id "
        f"FROM {table(Position)} p JOIN {table(LedgerAccount)} la ON la.asset_id = %s AND ("
        "  (p.margin_mode = %s AND la.position_id = p.id) OR "
        "  (p.margin_mode = %s AND la.kind = %s AND la.margin_account_id = p.margin_account_id"
        "   AND la.position_id IS NULL)) "
        f"WHERE p.instrument_id IN ({marks}) AND p.quantity <> 0 ORDER BY p.id",
        [
            settlement_id,
            MarginMode.ISOLATED,
            MarginMode.CROSS,
            LedgerAccountKind.WALLET,
            *instrument_ids,
        ],
    )


@transaction.atomic
def funding_settle_due(*, now: datetime) -> FundingSettled:
    """Settle every perpetual's funding time that has passed and is not settled yet."""
    started = time.perf_counter()
    claimed = _claim(_due_rates(now=now))
    if not claimed:
        return FundingSettled(rates=[])
    settlement = Asset.objects.get(is_settlement=True)
    funding_account = LedgerAccount.objects.get_or_create(
        kind=LedgerAccountKind.FUNDING, asset=settlement, margin_account=None
    )[0].pk
    by_instrument = {rate.instrument_id: rate for rate in claimed}
    payments = []  # (position, account, rate id, ledger account, amount)
    for position_id, account_id, instrument_id, quantity, ledger_id in _open_positions(
        list(by_instrument), settlement.pk
    ):
        rate = by_instrument[instrument_id]
        amount = funding_payment(
            quantity=Decimal(quantity), mark_price=rate.mark_price, rate=rate.rate
        )
        if amount:
            payments.append((position_id, account_id, rate.pk, ledger_id, amount))
            if quantity > 0:
                rate.paid_by_longs -= amount
            rate.positions += 1

    accounts = sorted({p[1] for p in payments})
    journal_ids = dict(zip(accounts, new_ids(Journal, len(accounts)), strict=True))
    memo = (
        "funding " + ", ".join(f"{r.instrument.symbol} {r.rate * 100:.4f}%" for r in claimed)[:180]
    )
    bulk_write(
        Journal,
        ["id", "kind", "margin_account_id", "created_at", "memo"],
        [(journal_ids[a], JournalKind.FUNDING, a, now, memo) for a in accounts],
    )
    # One line per ledger account and journal (a cross wallet carries all of its account's
    # cross positions at once): the deferred balance trigger re-sums a journal per line.
    lines: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for _, account_id, _, ledger_id, amount in payments:
        lines[journal_ids[account_id], ledger_id] += amount
    per_journal: dict[int, Decimal] = defaultdict(Decimal)
    per_ledger: dict[int, Decimal] = defaultdict(Decimal)
    entries = []
    for (journal_id, ledger_id), amount in lines.items():
        if amount:
            entries.append((journal_id, ledger_id, settlement.pk, amount))
            per_journal[journal_id] += amount
            per_ledger[ledger_id] += amount
    for journal_id, total in per_journal.items():
        if total:
            entries.append((journal_id, funding_account, settlement.pk, -total))
            per_ledger[funding_account] -= total
    bulk_write(Entry, ["journal_id", "ledger_account_id", "asset_id", "amount"], entries)
    bulk_write(
        FundingPayment,
        ["funding_rate_id", "position_id", "journal_id", "amount"],
        [(r, p, journal_ids[a], amount) for p, a, r, _, amount in payments],
    )
    _balances_add(per_ledger)
    for rate in claimed:
        FundingRate.objects.filter(pk=rate.pk).update(
            positions=rate.positions, paid_by_longs=rate.paid_by_longs
        )
        logger.info(
            "funding %s at %s: rate %s on %s positions",
            rate.instrument.symbol,
            rate.funding_time,
            rate.rate,
            rate.positions,
        )
    logger.info(
        "funding settled: %s positions, %s journals, %s entries in %.2f s",
        len(payments),
        len(accounts),
        len(entries),
        time.perf_counter() - started,
    )
    return FundingSettled(rates=claimed, positions=len(payments), journals=len(accounts))


def _balances_add(amounts: dict[int, Decimal]) -> None:
    """Add each amount to its ledger account's balance, in ledger account id order (the house
    account, shared, among them)."""
    ordered = sorted((pk, amount) for pk, amount in amounts.items() if amount)
    if not ordered:
        return
    if connection.vendor == "postgresql":
        execute("CREATE TEMP TABLE funding_balance (id bigint, amount numeric) ON COMMIT DROP")
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy("COPY funding_balance (id, amount) FROM STDIN") as copy,
        ):
            for pk, amount in ordered:
                copy.write_row((pk, amount))
        execute(
            f"SELECT id FROM {table(LedgerAccount)} WHERE id IN (SELECT id FROM funding_balance) "
            "ORDER BY id FOR UPDATE"
        )
        execute(
            f"UPDATE {table(LedgerAccount)} la SET balance = la.balance + b.amount "
            "FROM funding_balance b WHERE la.id = b.id"
        )
        execute("DROP TABLE funding_balance")
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
            [(amount, pk) for pk, amount in ordered],
        )

"""Funding settlement: at each funding time every open perpetual position pays or receives
−side × |quantity| × mark × rate (Binance USD-M), longs to shorts through the funding clearing
account, in the settlement asset.

`funding_settle_due` runs in the revaluation dispatcher before the tick freezes its prices, so
the tick that follows a funding time values every account after its funding: a payment moves
account states, margin calls and liquidations like any other loss.

One transaction for every perpetual due at once. Its `FundingRate` rows are inserted first with
ON CONFLICT DO NOTHING: a replayed tick, or a dispatcher that died and was run again, finds
them and books nothing twice (a dispatcher killed before commit left nothing behind). One
journal per paying ledger account (an account's cross wallet for all its cross positions; the
isolated margin of an isolated position) against the funding account, so every journal
balances and the funding account holds exactly what the book's longs and shorts did
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
from django.db.models import Q

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
from margin.selectors.funding import funding_interval, funding_rate_working, funding_time_due
from margin.services.bulk import bulk_write, new_ids

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


def _held_at_funding_time(
    claimed: list[FundingRate], settlement_id: int
) -> list[tuple[int, int, FundingRate, Decimal, int]]:
    """(position, account, rate, quantity at the funding time, ledger account paying) of every
    position open at its funding time, on the engine's Decimals (SQLite keeps NUMERIC as a
    float). An open isolated position pays from its isolated margin; a cross one, or one closed
    since the funding time (its isolated margin went back to the wallet), from the wallet."""
    by_instrument = {rate.instrument_id: rate for rate in claimed}
    moved = _moved_after(claimed)
    held = []
    for position_id, account_id, instrument_id, quantity, mode in (
        Position.objects.filter(instrument_id__in=list(by_instrument))
        .filter(~Q(quantity=0) | Q(pk__in=list(moved)))
        .order_by("pk")
        .values_list("pk", "margin_account_id", "instrument_id", "quantity", "margin_mode")
    ):
        at_funding = quantity - moved.get(position_id, Decimal(0))
        if at_funding:
            isolated = mode == MarginMode.ISOLATED and quantity != 0
            held.append(
                (position_id, account_id, by_instrument[instrument_id], at_funding, isolated)
            )
    wallets = {account_id for _, account_id, _, _, isolated in held if not isolated}
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table(LedgerAccount)} (kind, asset_id, margin_account_id, balance) "
            "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
            [(LedgerAccountKind.WALLET, settlement_id, account) for account in sorted(wallets)],
        )
    wallet_of = dict(
        LedgerAccount.objects.filter(
            kind=LedgerAccountKind.WALLET,
            asset_id=settlement_id,
            margin_account_id__in=wallets,
            position__isnull=True,
        ).values_list("margin_account_id", "pk")
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
    memo = (
        "funding " + ", ".join(f"{r.instrument.symbol} {r.rate * 100:.4f}%" for r in claimed)[:180]
    )
    post = _post_in_sql if connection.vendor == "postgresql" else _post_in_python
    positions, journals = post(
        claimed, settlement_id=settlement.pk, funding_account=funding_account, memo=memo, now=now
    )
    for rate in claimed:
        rate.refresh_from_db(fields=["positions", "paid_by_longs"])
        logger.info(
            "funding %s at %s: rate %s on %s positions",
            rate.instrument.symbol,
            rate.funding_time,
            rate.rate,
            rate.positions,
        )
    logger.info(
        "funding settled: %s positions, %s journals in %.2f s",
        positions,
        journals,
        time.perf_counter() - started,
    )
    return FundingSettled(rates=claimed, positions=positions, journals=journals)


def _post_in_python(
    claimed: list[FundingRate], *, settlement_id: int, funding_account: int, memo: str, now
) -> tuple[int, int]:
    """SQLite (the embedded demo's small book): the payments worked out here, with the engine's
    Decimal reference, and written row by row."""
    payments = []  # (position, account, rate id, ledger account, amount)
    for position_id, account_id, rate, quantity, ledger_id in _held_at_funding_time(
        claimed, settlement_id
    ):
        amount = funding_payment(quantity=quantity, mark_price=rate.mark_price, rate=rate.rate)
        if amount:
            payments.append((position_id, account_id, rate.pk, ledger_id, amount))
            if quantity > 0:
                rate.paid_by_longs -= amount
            rate.positions += 1

    # One journal per paying ledger account (a cross wallet pays for all of its account's cross
    # positions at once, an isolated margin for its position): two lines, x and −x. The
    # deferred balance trigger re-sums a journal per line, so small journals keep it linear.
    payers = sorted({(p[3], p[1]) for p in payments})
    journal_ids = dict(zip(payers, new_ids(Journal, len(payers)), strict=True))
    bulk_write(
        Journal,
        ["id", "kind", "margin_account_id", "created_at", "memo"],
        [(journal_ids[payer], JournalKind.FUNDING, payer[1], now, memo) for payer in payers],
    )
    lines: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for _, account_id, _, ledger_id, amount in payments:
        lines[ledger_id, account_id] += amount
    per_ledger: dict[int, Decimal] = defaultdict(Decimal)
    entries = []
    for payer, amount in lines.items():
        if amount:
            entries.append((journal_ids[payer], payer[0], settlement_id, amount))
            entries.append((journal_ids[payer], funding_account, settlement_id, -amount))
            per_ledger[payer[0]] += amount
            per_ledger[funding_account] -= amount
    bulk_write(Entry, ["journal_id", "ledger_account_id", "asset_id", "amount"], entries)
    bulk_write(
        FundingPayment,
        ["funding_rate_id", "position_id", "journal_id", "amount"],
        [(r, p, journal_ids[ledger, a], amount) for p, a, r, ledger, amount in payments],
    )
    _balances_add(per_ledger)
    for rate in claimed:
        FundingRate.objects.filter(pk=rate.pk).update(
            positions=rate.positions, paid_by_longs=rate.paid_by_longs
        )
    return len(payments), len(payers)


def _post_in_sql(
    claimed: list[FundingRate], *, settlement_id: int, funding_account: int, memo: str, now
) -> tuple[int, int]:
    """PostgreSQL: set-based in exact NUMERIC, the same rule as the engine's reference
    (round(−quantity × mark × rate, 8), a tie away from zero), no row through Python."""
    rate_ids = [rate.pk for rate in claimed]
    marks = ", ".join(["%s"] * len(rate_ids))
    execute(
        f"SELECT p.id FROM {table(Position)} p JOIN {table(FundingRate)} fr "
        f"ON fr.instrument_id = p.instrument_id WHERE fr.id IN ({marks}) AND p.quantity <> 0 "
        "AND p.margin_mode = %s ORDER BY p.id FOR UPDATE OF p",
        [*rate_ids, MarginMode.ISOLATED],
    )
    # Each position's size at its funding time: its size now less what its fills added since
    # (a position opened after the funding time held nothing at it, one closed since held its
    # size). The fills since the earliest funding time come from the created_at index.
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
        "GROUP BY f.position_id) m ON m.position_id = p.id "
        "WHERE p.quantity - COALESCE(m.quantity, 0) <> 0",
        [
            MarginMode.ISOLATED,
            *rate_ids,
            *rate_ids,
            min(rate.funding_time for rate in claimed),
        ],
    )
    # Cross positions, and positions closed since, pay from the settlement-asset wallet.
    execute(
        f"INSERT INTO {table(LedgerAccount)} (kind, asset_id, margin_account_id, balance) "
        "SELECT DISTINCT %s, %s, account_id, 0 FROM funding_held WHERE NOT isolated "
        "ON CONFLICT DO NOTHING",
        [LedgerAccountKind.WALLET, settlement_id],
    )
    pick = (
        "SELECT h.position_id, h.account_id, h.rate_id, la.id AS ledger_id, h.quantity, "
        "round(-h.quantity * h.mark_price * h.rate, 8) AS amount FROM funding_held h "
        f"JOIN {table(LedgerAccount)} la ON la.asset_id = %s AND "
    )
    execute(
        "CREATE TEMP TABLE funding_due ON COMMIT DROP AS "
        f"{pick} la.position_id = h.position_id WHERE h.isolated "
        f"UNION ALL {pick} la.margin_account_id = h.account_id AND la.kind = %s "
        "AND la.position_id IS NULL WHERE NOT h.isolated",
        [settlement_id, settlement_id, LedgerAccountKind.WALLET],
    )
    execute("DELETE FROM funding_due WHERE amount = 0")
    journal_sequence = f"pg_get_serial_sequence('{table(Journal)}', 'id')"
    execute(
        "CREATE TEMP TABLE funding_payer ON COMMIT DROP AS SELECT ledger_id, account_id, "
        f"sum(amount) AS amount, nextval({journal_sequence}) AS journal_id FROM funding_due "
        "GROUP BY ledger_id, account_id"
    )
    execute(
        f"INSERT INTO {table(Journal)} (id, kind, margin_account_id, created_at, memo) "
        "SELECT journal_id, %s, account_id, %s, %s FROM funding_payer",
        [JournalKind.FUNDING, now, memo],
    )
    execute(
        f"INSERT INTO {table(Entry)} (journal_id, ledger_account_id, asset_id, amount) "
        "SELECT journal_id, ledger_id, %s, amount FROM funding_payer WHERE amount <> 0 "
        "UNION ALL SELECT journal_id, %s, %s, -amount FROM funding_payer WHERE amount <> 0",
        [settlement_id, funding_account, settlement_id],
    )
    execute(
        f"INSERT INTO {table(FundingPayment)} (funding_rate_id, position_id, journal_id, amount) "
        "SELECT d.rate_id, d.position_id, p.journal_id, d.amount FROM funding_due d "
        "JOIN funding_payer p USING (ledger_id, account_id)"
    )
    # Balances, their rows locked in id order first (the shared funding account among them).
    execute(
        f"SELECT id FROM {table(LedgerAccount)} WHERE id = %s OR id IN "
        "(SELECT ledger_id FROM funding_payer WHERE amount <> 0) ORDER BY id FOR UPDATE",
        [funding_account],
    )
    execute(
        f"UPDATE {table(LedgerAccount)} la SET balance = la.balance + p.amount "
        "FROM funding_payer p WHERE la.id = p.ledger_id AND p.amount <> 0"
    )
    execute(
        f"UPDATE {table(LedgerAccount)} SET balance = balance - "
        "(SELECT COALESCE(sum(amount), 0) FROM funding_payer) WHERE id = %s",
        [funding_account],
    )
    execute(
        f"UPDATE {table(FundingRate)} fr SET positions = c.n, paid_by_longs = c.longs "
        "FROM (SELECT rate_id, count(*) AS n, "
        "COALESCE(-sum(amount) FILTER (WHERE quantity > 0), 0) AS longs "
        "FROM funding_due GROUP BY rate_id) c WHERE fr.id = c.rate_id"
    )
    counts = rows("SELECT (SELECT count(*) FROM funding_due), (SELECT count(*) FROM funding_payer)")
    execute("DROP TABLE funding_held, funding_due, funding_payer")
    return counts[0][0], counts[0][1]


def _balances_add(amounts: dict[int, Decimal]) -> None:
    """Add each amount to its ledger account's balance, in ledger account id order."""
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
            sorted(((amount, pk) for pk, amount in amounts.items() if amount), key=lambda r: r[1]),
        )

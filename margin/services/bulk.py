"""Bulk writes for the embedded mode (SQLite) of services that book many rows at once; on
PostgreSQL those services write set-based SQL instead. Call inside the service's transaction."""

from collections.abc import Sequence
from decimal import Decimal

from django.db import connection

from margin.db import rows, table
from margin.models import LedgerAccount


def new_ids(model, count: int) -> list[int]:
    """`count` unused ids of `model`'s table: SQLite lets one writer at a time hold the
    database and the caller's transaction has already written, so the ids above the largest
    are free."""
    largest = rows(f"SELECT COALESCE(MAX(id), 0) FROM {table(model)}")[0][0]
    return list(range(largest + 1, largest + 1 + count))


def bulk_write(model, columns: Sequence[str], values: Sequence[tuple]) -> int:
    """Insert `values` (tuples in the order of `columns`) into `model`'s table."""
    if values:
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table(model)} ({names}) VALUES ({marks})", values)
    return len(values)


def balances_add(amounts: dict[int, Decimal]) -> None:
    """Add each amount to its ledger account's balance, in ledger account id order."""
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
            sorted(((amount, pk) for pk, amount in amounts.items() if amount), key=lambda r: r[1]),
        )

"""Bulk writes for services that book the whole book at once (funding): ids drawn ahead and
rows streamed with COPY on PostgreSQL; plain INSERTs on SQLite (the embedded demo's book is
small). Call inside the service's transaction."""

from collections.abc import Sequence

from django.db import connection

from margin.services.sql import rows, table


def new_ids(model, count: int) -> list[int]:
    """`count` unused ids of `model`'s table. PostgreSQL draws them from the table's sequence
    (safe beside concurrent inserts); SQLite lets one writer at a time hold the database, and
    the caller's transaction has already written, so the ids above the largest are free."""
    if count == 0:
        return []
    if connection.vendor == "postgresql":
        sequence = f"pg_get_serial_sequence('{table(model)}', 'id')"
        drawn = rows(f"SELECT nextval({sequence}) FROM generate_series(1, %s)", [count])
        return [pk for (pk,) in drawn]
    largest = rows(f"SELECT COALESCE(MAX(id), 0) FROM {table(model)}")[0][0]
    return list(range(largest + 1, largest + 1 + count))


def bulk_write(model, columns: Sequence[str], values: Sequence[tuple]) -> int:
    """Insert `values` (tuples in the order of `columns`) into `model`'s table."""
    if not values:
        return 0
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table(model)} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table(model)} ({names}) VALUES ({marks})", values)
    return len(values)

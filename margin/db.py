"""Plain SQL helpers for reads and writes alike: compiling the equivalent querysets cost more
CPU than the rest of a write, and the bank test runs thousands of writes a minute."""

import json
from collections.abc import Sequence
from decimal import Decimal

from django.db import connection, connections
from django.db.models.expressions import RawSQL


def table(model) -> str:
    return model._meta.db_table


def rows(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def insert(model, **values) -> int:
    """Insert one row of `model` and return its id (PostgreSQL and SQLite ≥ 3.35)."""
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    return rows(
        f"INSERT INTO {table(model)} ({columns}) VALUES ({placeholders}) RETURNING id",
        list(values.values()),
    )[0][0]


def json_value(value):
    """A JSON column read in plain SQL: Django has both databases hand it over as text."""
    return json.loads(value) if isinstance(value, str) else value


def ids_in(ids: Sequence[int]) -> RawSQL:
    """The ids as a subquery for `pk__in` in one parameter: an IN list of thousands of
    parameters costs PostgreSQL more to parse and plan than the statement's own work."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", ["{" + ",".join(map(str, ids)) + "}"])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps([int(i) for i in ids])])


def decimal(value) -> Decimal:
    """PostgreSQL hands NUMERIC over as Decimal; SQLite's raw cursor gives numbers or text."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def connections_close_before_fork() -> None:
    """Close this process's connections and its connection pools before it forks: a child
    inheriting a pool's open sockets talks over them alongside the parent (psycopg then reads
    the other process's replies: "unexpected response from server"). Each child then opens a
    pool of its own on first use."""
    for database in connections.all():
        database.close()
        pools = getattr(type(database), "_connection_pools", {})
        if database.alias in pools:
            database.close_pool()

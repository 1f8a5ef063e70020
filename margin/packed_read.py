"""Read a query's fixed-width columns into NumPy arrays, each packed into one bytea by PostgreSQL.

The whole book is half a million positions. Fetched as tuples, Django's converters and the
driver's text parsing cost more than the query; binary COPY is no better through psycopg (one
Python step per row). Aggregating each column's binary form (`int8send`, `float8send`,
`boolsend`) with `string_agg` hands back one row of a few bytea values that NumPy reads whole.
"""

import numpy as np
from django.db import connection
from django.db.models import QuerySet

# PostgreSQL type → (its binary send function, NumPy type in network byte order)
PACKED_TYPES = {
    "int8": ("int8send", ">i8"),
    "float8": ("float8send", ">f8"),
    "bool": ("boolsend", "?"),
}


def native_type(kind: str) -> np.dtype:
    """The NumPy type, in this machine's byte order, of the PostgreSQL type `kind`."""
    return np.dtype(PACKED_TYPES[kind][1]).newbyteorder("=")


def packed_columns(rows: QuerySet, types: tuple[str, ...]) -> list[np.ndarray] | None:
    """The columns of a values_list query (no NULLs) whose PostgreSQL types are `types`, as
    native NumPy arrays in one order across columns; None where the database is not PostgreSQL,
    so the caller fetches tuples instead."""
    if connection.vendor != "postgresql":
        return None
    sql, params = rows.query.sql_with_params()
    names = [f"c{n}" for n in range(len(types))]
    packed = ", ".join(
        f"string_agg({PACKED_TYPES[kind][0]}({name}), ''::bytea)"
        for name, kind in zip(names, types, strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {packed} FROM ({sql}) AS packed({', '.join(names)})", params)
        values = cursor.fetchone()
    columns = []
    for value, kind in zip(values, types, strict=True):
        column = np.frombuffer(value or b"", dtype=PACKED_TYPES[kind][1])
        columns.append(column.astype(native_type(kind)))
    return columns

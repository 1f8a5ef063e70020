"""The binary COPY the tick writes its snapshots with: NumPy-packed numerics, NULLs, text and
bytea, read back by PostgreSQL as its own text form would be."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from margin.packed_write import (
    Field,
    bytes_field,
    copy_rows,
    int8_field,
    numeric_field,
    text_field,
)

pytestmark = pytest.mark.django_db

EDGES = [
    0.0,
    -0.0,
    76.0,
    0.1,
    0.1 + 0.2,
    -5.5,
    1e-31,
    999999.99999999999,
    1e19,
    123456789012.345678,
]


def _table() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE packed (id int8, money numeric(38, 18), ratio numeric(20, 12), "
            "label varchar(16), blob bytea, exact float8)"
        )


def test_floats_arrive_as_postgresql_casts_them_to_numeric():
    # given: floats across 24 orders of magnitude, both signs, and the edges of the encoding
    _table()
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [rng.normal(0, 1, 5000) * 10.0 ** rng.integers(-12, 12, 5000), EDGES, [np.nan]]
    )
    n = len(values)
    # when
    copy_rows(
        "packed",
        ("id", "money", "ratio", "exact"),
        [
            int8_field(np.arange(n)),
            numeric_field(values),
            numeric_field(np.clip(values, -1e7, 1e7)),
            # the float itself, bit for bit, to compare with
            Field(lengths=np.full(n, 8), data=values.astype(">f8").view(np.uint8), unit=8),
        ],
    )
    with connection.cursor() as cursor:
        # then: as PostgreSQL's float8 → numeric (15 significant digits), or one unit off in
        # the 15th where the float lies within rounding of a tie
        cursor.execute(
            "SELECT count(*) FILTER (WHERE money IS DISTINCT FROM exact::numeric(38, 18)), "
            "count(*) FILTER (WHERE abs(money - exact::numeric) "
            "> abs(exact::numeric) * 1e-14 + 1e-18), "
            "count(*) FILTER (WHERE abs(ratio - least(greatest(exact, -1e7), 1e7)::numeric) "
            "> abs(ratio) * 1e-14 + 1e-12), count(*) FILTER (WHERE money IS NULL) FROM packed"
        )
        differing, off, ratio_off, nulls = cursor.fetchone()
        cursor.execute("SELECT money FROM packed WHERE id >= 5000 ORDER BY id")
        edges = [row[0] for row in cursor.fetchall()]
    assert differing < n * 0.05 and off == 0 and ratio_off == 0
    assert nulls == 1 and edges[-1] is None
    assert edges[:-1] == [
        Decimal(0),
        Decimal(0),
        Decimal(76),
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("-5.5"),
        Decimal(0),
        Decimal(1000000),
        Decimal(10) ** 19,
        Decimal("123456789012.346"),
    ]


def test_text_and_bytea_rows_of_any_length_and_null():
    # given
    _table()
    blobs = [b"", b"\x00\xff" * 3, b"x"]
    # when
    copy_rows(
        "packed",
        ("id", "label", "blob", "ratio"),
        [
            int8_field(np.array([1, 2, 3])),
            text_field(["healthy", "", "margin_call"]),
            bytes_field(np.array([len(b) for b in blobs]), b"".join(blobs)),
            numeric_field(np.array([np.nan, 2.5, np.nan])),
        ],
    )
    # then
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, label, blob, ratio FROM packed ORDER BY id")
        rows = [(i, label, bytes(blob), ratio) for i, label, blob, ratio in cursor.fetchall()]
    assert rows == [
        (1, "healthy", b"", None),
        (2, "", b"\x00\xff" * 3, Decimal("2.5")),
        (3, "margin_call", b"x", None),
    ]

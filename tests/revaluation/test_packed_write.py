"""The binary COPY the tick writes its snapshots with: NumPy-packed numerics, NULLs, text and
bytea, read back by PostgreSQL as its own text form would be."""

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from margin.models import AccountEvent, AuditEntry
from margin.packed_write import (
    Field,
    bytes_field,
    copy_rows,
    int8_field,
    model_rows_insert,
    numeric_field,
    text_field,
)
from tests.revaluation.factories import funded_account

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


def test_model_rows_go_in_column_by_column_as_the_orm_would_write_them(market):
    # given: two accounts' events and audit lines, column by column (on SQLite: bulk_create)
    accounts = [funded_account().pk, funded_account().pk]
    at = datetime(2026, 12, 5, 22, 30, 15, 123456, tzinfo=UTC)
    # when
    model_rows_insert(
        AccountEvent,
        {
            "account_id": np.array(accounts),
            "at": [at, at],
            "kind": ["state_change", "reduce_only"],
            "from_state": ["healthy", ""],
            "to_state": ["margin_call", ""],
            "margin_ratio": np.array([0.8312345678, np.nan]),
            "detail": [{"margin_balance": "12.5", "amount": "3.10"}, {"reduce_only": True}],
        },
    )
    model_rows_insert(
        AuditEntry,
        {
            "at": [at],
            "action": ["account.state_change"],
            "margin_account_id": accounts[:1],
            "subject": ["tick:7"],
            "before": [{"state": "healthy"}],
            "after": [{"state": "margin_call", "margin_ratio": "0.83"}],
            "reason": ["revaluation"],
        },
    )
    # then
    events = AccountEvent.objects.order_by("account_id").values_list(
        "account_id", "tick_id", "kind", "from_state", "to_state", "margin_ratio", "detail"
    )
    assert list(events) == [
        (
            accounts[0],
            None,
            "state_change",
            "healthy",
            "margin_call",
            Decimal("0.8312345678"),
            {"margin_balance": "12.5", "amount": "3.10"},
        ),
        (accounts[1], None, "reduce_only", "", "", None, {"reduce_only": True}),
    ]
    audit = AuditEntry.objects.get(action="account.state_change")
    assert (audit.margin_account_id, audit.actor_id, audit.subject, audit.reason) == (
        accounts[0],
        None,
        "tick:7",
        "revaluation",
    )
    assert (audit.before, audit.after) == (
        {"state": "healthy"},
        {"state": "margin_call", "margin_ratio": "0.83"},
    )
    if connection.vendor == "postgresql":  # bulk_create stamps its own time (auto_now_add)
        assert {e.at for e in AccountEvent.objects.all()} | {audit.at} == {at}

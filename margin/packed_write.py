"""COPY rows into a PostgreSQL table in its binary format, built from NumPy columns.

A shard writes 25,000 snapshots of ten numbers each. As COPY text, Python spent ≈ 0.55 s per
shard turning floats into text (`repr` per number, JSON per position) and PostgreSQL parsed it
back. In binary form each value is fixed-width (int8, numeric at a fixed count of digits) or a
byte string NumPy already holds, so the whole stream is assembled by a few array copies: no
Python step per value. `packed_read` is the other direction. `model_rows_insert` writes a
model's rows given column by column the same way (bulk_create on SQLite).
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db import connection

# The binary COPY format: signature, flags (no OIDs), header extension length; then the rows;
# then a field count of -1.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = np.int16(-1).astype(">i2").tobytes()

# A float becomes a numeric of 15 significant digits, as PostgreSQL's own float8 → numeric
# cast does (DBL_DIG: what a float64 holds for certain). The digits go over in base 10,000;
# 15 decimal digits shifted by at most 3 to a group boundary fit in 5 groups.
SIGNIFICANT_DIGITS = 15
_GROUPS = 5
_NUMERIC_NEGATIVE = 0x4000
# Below this a value is 0 in any NUMERIC column here (scales up to 18), and 10**-exponent
# would overflow a float.
_NUMERIC_TINY = 1e-30
_NUMERIC = np.dtype(
    [
        ("ndigits", ">i2"),
        ("weight", ">i2"),
        ("sign", ">u2"),
        ("dscale", ">u2"),
        ("digits", ">i2", (_GROUPS,)),
    ]
)


@dataclass(frozen=True)
class Field:
    """One column in binary form: row i's value is the next `lengths[i]` bytes of `data` (rows
    in order), a whole number of `unit`-byte records; a length of -1 is NULL and takes none."""

    lengths: np.ndarray
    data: np.ndarray  # uint8
    unit: int = 1

    def records(self) -> np.ndarray:
        return self.data.view(np.dtype((np.void, self.unit)))


def int8_field(values: np.ndarray | Sequence[int]) -> Field:
    return _fixed(np.asarray(values).astype(">i8"))


def numeric_field(values: np.ndarray) -> Field:
    """Floats as NUMERIC; nan (no figure) as NULL. PostgreSQL rounds each to its column's
    scale on the way in, as it does the text form."""
    present = np.isfinite(values)
    x = np.abs(values[present])
    x[x < _NUMERIC_TINY] = 0.0
    nonzero = x > 0
    # The decimal exponent of the last significant digit kept, moved down to a multiple of 4
    # (a base-10,000 group boundary) by `shift` more digits.
    leading = np.floor(np.log10(np.where(nonzero, x, 1.0))).astype(np.int64)
    last = leading - (SIGNIFICANT_DIGITS - 1)
    mantissa = np.rint(x * 10.0 ** (-last)).astype(np.int64)
    shift = np.mod(last, 4)
    scaled = mantissa * 10**shift
    records = np.zeros(len(x), dtype=_NUMERIC)
    records["ndigits"] = _GROUPS
    records["digits"] = (scaled[:, None] // 10_000 ** np.arange(_GROUPS - 1, -1, -1)) % 10_000
    # PostgreSQL strips the leading and trailing zero groups; a zero keeps weight 0, scale 0.
    base = (last - shift) // 4
    records["weight"] = np.where(nonzero, base + _GROUPS - 1, 0)
    records["sign"] = np.where(values[present] < 0, _NUMERIC_NEGATIVE, 0)
    records["dscale"] = np.where(nonzero, np.maximum(0, -4 * base), 0)
    lengths = np.where(present, _NUMERIC.itemsize, -1)
    return Field(lengths=lengths, data=records.view(np.uint8), unit=_NUMERIC.itemsize)


def text_field(values: Sequence[str]) -> Field:
    return _strings_field([value.encode() for value in values])


# jsonb's binary form: a version byte, then the JSON text.
_JSONB_VERSION = b"\x01"


def json_field(values: Sequence) -> Field:
    return _strings_field([_JSONB_VERSION + json.dumps(value).encode() for value in values])


# timestamptz's binary form: microseconds since PostgreSQL's epoch.
_POSTGRESQL_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def timestamp_field(values: Sequence[datetime]) -> Field:
    return int8_field(
        np.array([(value - _POSTGRESQL_EPOCH) // _MICROSECOND for value in values], dtype=np.int64)
    )


def _strings_field(encoded: list[bytes]) -> Field:
    return bytes_field(np.array([len(b) for b in encoded], dtype=np.int64), b"".join(encoded))


def bytes_field(lengths: np.ndarray, data: bytes | np.ndarray, unit: int = 1) -> Field:
    """Byte strings (bytea) of the given lengths, concatenated in `data`: whole records of
    `unit` bytes each (the stream is then gathered a record at a time, not a byte)."""
    return Field(lengths=np.asarray(lengths), data=np.frombuffer(data, dtype=np.uint8), unit=unit)


def _fixed(values: np.ndarray) -> Field:
    unit = values.dtype.itemsize
    return Field(lengths=np.full(len(values), unit), data=values.view(np.uint8), unit=unit)


def _big_endian(value: int, dtype: str) -> np.ndarray:
    return np.frombuffer(np.array(value, dtype=dtype).tobytes(), dtype=np.uint8)


def copy_stream(fields: list[Field]) -> np.ndarray:
    """The binary COPY stream of the rows whose columns are `fields` (in the COPY's order).

    Rows whose fields have the same lengths (NULL or not, as many position records...) share
    one layout: each such group is one 2-D block of the stream, filled a field (a band of
    columns) at a time, its values gathered a record at a time. The rows go out grouped, not
    in their given order."""
    firsts = []  # each row's first record in each field's data
    size = len(_HEADER) + len(_TRAILER) + 2 * len(fields[0].lengths)
    for field in fields:
        present = np.maximum(field.lengths, 0)
        counts = present // field.unit
        firsts.append(np.cumsum(counts) - counts)
        size += 4 * len(present) + int(present.sum())
    stream = np.empty(size, dtype=np.uint8)
    stream[: len(_HEADER)] = np.frombuffer(_HEADER, dtype=np.uint8)
    stream[size - len(_TRAILER) :] = np.frombuffer(_TRAILER, dtype=np.uint8)
    at = len(_HEADER)
    for rows in _layouts(fields):
        lengths = [int(field.lengths[rows[0]]) for field in fields]
        width = 2 + sum(4 + max(length, 0) for length in lengths)
        block = stream[at : at + len(rows) * width].reshape(len(rows), width)
        at += block.size
        block[:, :2] = _big_endian(len(fields), ">i2")
        column = 2
        for field, first, length in zip(fields, firsts, lengths, strict=True):
            block[:, column : column + 4] = _big_endian(length, ">i4")
            column += 4
            if length > 0:
                taken = field.records()[first[rows][:, None] + np.arange(length // field.unit)]
                block[:, column : column + length] = taken.view(np.uint8).reshape(-1, length)
                column += length
    return stream


def _layouts(fields: list[Field]) -> list[np.ndarray]:
    """The rows of each layout (the same length in every field), in order. A row's layout is
    the mixed-radix number of its lengths' ranks over the fields whose lengths vary: an
    integer sort, where sorting the rows of lengths themselves cost 0.1 s per 25,000."""
    n = len(fields[0].lengths)
    ranks, sizes = [], []
    for field in fields:
        distinct, rank = np.unique(field.lengths, return_inverse=True)
        if len(distinct) > 1:
            ranks.append(rank.reshape(-1))
            sizes.append(len(distinct))
    layout_of = np.ravel_multi_index(ranks, sizes) if ranks else np.zeros(n, dtype=np.int64)
    order = np.argsort(layout_of, kind="stable")
    bounds = np.flatnonzero(np.diff(layout_of[order])) + 1
    return [rows for rows in np.split(order, bounds) if len(rows)]


def copy_rows(table: str, columns: tuple[str, ...], fields: list[Field]) -> None:
    """COPY the rows into `table` (PostgreSQL only) in one binary stream."""
    names = ", ".join(columns)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(copy_stream(fields).data)


# A model field's column in binary form, by the field's type (a foreign key's: its target's).
_FIELD_BUILDERS = {
    "BigAutoField": int8_field,
    "BigIntegerField": int8_field,
    "CharField": text_field,
    "TextField": text_field,
    "DecimalField": lambda floats: numeric_field(np.asarray(floats, dtype=float)),
    "DateTimeField": timestamp_field,
    "JSONField": json_field,
}


def decimal_or_none(value: float) -> Decimal | None:
    """A float as the embedded mode (SQLite) stores it: rounded to 10 places; nan: None."""
    return Decimal(repr(round(value, 10))) if math.isfinite(value) else None


def model_rows_insert(model, columns: dict[str, Sequence]) -> None:
    """Insert `model`'s rows given column by column (by attribute name: `account_id`, each
    column as long as the others): one binary COPY on PostgreSQL, bulk_create elsewhere (SQLite,
    the embedded mode). Decimal columns as floats (nan: NULL), JSON columns as Python values.

    Rows built as model instances cost the revaluation ≈ 60 µs of Python each (Django's
    `Model.__init__` and `bulk_create`'s per-value preparation, then psycopg dumping every
    value into an array) — seconds for a tick moving thousands of accounts."""
    fields = {field.attname: field for field in model._meta.concrete_fields}
    if connection.vendor == "postgresql":
        copy_rows(
            model._meta.db_table,
            tuple(fields[name].column for name in columns),
            [_FIELD_BUILDERS[_kind(fields[name])](values) for name, values in columns.items()],
        )
        return
    decimals = {name for name in columns if fields[name].get_internal_type() == "DecimalField"}
    plain = [np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for v in columns.values()]
    rows = (
        {
            name: decimal_or_none(value) if name in decimals else value
            for name, value in zip(columns, values, strict=True)
        }
        for values in zip(*plain, strict=True)
    )
    model.objects.bulk_create(model(**row) for row in rows)


def _kind(field) -> str:
    return (field.target_field if field.is_relation else field).get_internal_type()

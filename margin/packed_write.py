"""COPY rows into a PostgreSQL table in its binary format, built from NumPy columns.

A shard writes 25,000 snapshots of ten numbers each. As COPY text, Python spent ≈ 0.55 s per
shard turning floats into text (`repr` per number, JSON per position) and PostgreSQL parsed it
back. In binary form each value is fixed-width (int8, numeric at a fixed count of digits) or a
byte string NumPy already holds, so the whole stream is assembled by a few array copies: no
Python step per value. `packed_read` is the other direction.
"""

from dataclasses import dataclass

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
    """One column in binary form: row i's bytes are the next `lengths[i]` bytes of `data`
    (rows in order); a length of -1 is NULL and takes no bytes."""

    lengths: np.ndarray
    data: np.ndarray  # uint8


def int8_field(values: np.ndarray) -> Field:
    return _fixed(values.astype(">i8"))


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
    return Field(lengths=lengths, data=records.view(np.uint8).reshape(-1))


def text_field(values: list[str]) -> Field:
    encoded = [value.encode() for value in values]
    return bytes_field(np.array([len(b) for b in encoded]), b"".join(encoded))


def bytes_field(lengths: np.ndarray, data: bytes | np.ndarray) -> Field:
    """Byte strings (bytea) of the given lengths, concatenated in `data`."""
    return Field(lengths=np.asarray(lengths), data=np.frombuffer(data, dtype=np.uint8))


def _fixed(values: np.ndarray) -> Field:
    return Field(lengths=np.full(len(values), values.dtype.itemsize), data=values.view(np.uint8))


def copy_stream(fields: list[Field]) -> np.ndarray:
    """The binary COPY stream of the rows whose columns are `fields` (in the COPY's order)."""
    n = len(fields[0].lengths)
    sizes = np.full(n, 2, dtype=np.int64)
    for field in fields:
        sizes += 4 + np.maximum(field.lengths, 0)
    ends = np.cumsum(sizes)
    stream = np.empty(len(_HEADER) + int(ends[-1] if n else 0) + len(_TRAILER), dtype=np.uint8)
    stream[: len(_HEADER)] = np.frombuffer(_HEADER, dtype=np.uint8)
    stream[-len(_TRAILER) :] = np.frombuffer(_TRAILER, dtype=np.uint8)
    at = len(_HEADER) + ends - sizes  # where each row's next part goes
    _scatter(stream, at, np.full(n, len(fields), dtype=">i2").view(np.uint8), 2)
    at += 2
    for field in fields:
        _scatter(stream, at, field.lengths.astype(">i4").view(np.uint8), 4)
        at += 4
        present = np.maximum(field.lengths, 0)
        _scatter(stream, at, field.data, present)
        at += present
    return stream


def _scatter(stream: np.ndarray, at: np.ndarray, data: np.ndarray, lengths) -> None:
    """Row i's `lengths[i]` bytes (the next ones of `data`) to `stream[at[i]:]`."""
    lengths = np.broadcast_to(lengths, at.shape)
    starts = np.cumsum(lengths) - lengths
    stream[np.repeat(at - starts, lengths) + np.arange(len(data))] = data


def copy_rows(table: str, columns: tuple[str, ...], fields: list[Field]) -> None:
    """COPY the rows into `table` (PostgreSQL only) in one binary stream."""
    names = ", ".join(columns)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(copy_stream(fields).data)

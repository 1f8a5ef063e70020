"""The desk queue's first rows, found from what the tick wrote down instead of by sorting a
million snapshots.

A queue order is an ascending key per account (the database's order, ties by account id). The
database sorts the stored decimals; the engine only knows the floats they were written from, so
each account carries an interval [lo, hi] that surely holds its stored key. If fewer than n rows
come before row y, y's lo is at most the n-th smallest hi (otherwise n rows have a stored key
below y's). So the rows whose lo reaches no further than that bound hold the queue's first n
rows, in any part of the book: each shard keeps those of its own rows (`queue_head`), and the
page merges the shards' heads (`head_candidates`) and lets the database order the few hundred
rows left.
"""

import numpy as np

# The stored figures are the floats to 15 significant digits rounded to 12 or 18 decimals
# (SQLite: 10 places), and the key's float subtraction rounds once more: an error far below
# 1e-9 + 1e-12 × |operands| for any figure a book holds.
ABSOLUTE_ERROR = 1e-9
RELATIVE_ERROR = 1e-12
# The key of a null margin ratio (no equity): beyond any stored ratio (capped at 1e7), on the
# side its database sorts nulls to.
NULL_KEY = 1e300


def key_error(*operands: np.ndarray) -> np.ndarray:
    """How far the stored key of a row may lie from its float key."""
    return ABSOLUTE_ERROR + RELATIVE_ERROR * sum(np.abs(np.nan_to_num(x)) for x in operands)


def queue_head(key: np.ndarray, error: np.ndarray, account_ids: np.ndarray, n: int) -> list:
    """[lo, hi, account id] of the rows that may be among the first `n` of `key`'s order (every
    row when there are no more than `n`), lowest lo first."""
    lo, hi = key - error, key + error
    if len(key) > n:
        keep = np.flatnonzero(lo <= np.partition(hi, n - 1)[n - 1])
        keep = keep[np.argsort(lo[keep], kind="stable")]
    else:
        keep = np.argsort(lo, kind="stable")
    return [
        list(row)
        for row in zip(
            lo[keep].tolist(), hi[keep].tolist(), account_ids[keep].tolist(), strict=True
        )
    ]


def head_candidates(heads: list[list], n: int) -> list[int]:
    """The account ids among several heads (each kept for at least `n` rows) that may be among
    the first `n` rows of them all."""
    if len(heads) > n:
        bound = np.partition(np.array([hi for _, hi, _ in heads]), n - 1)[n - 1]
        return [account_id for lo, _, account_id in heads if lo <= bound]
    return [account_id for _, _, account_id in heads]

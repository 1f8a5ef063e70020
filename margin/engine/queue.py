"""The desk queue's first rows, found from what the tick wrote down instead of by sorting a
million snapshots.

A queue order is an ascending key per account (the database's order, ties by account id). The
database sorts the stored decimals; the engine only knows the floats they were written from, so
each account carries an interval [lo, hi] that surely holds its stored key. Row x surely comes
before row y when (hi_x, id_x) < (lo_y, id_y): x's stored key is then below y's, or both equal
hi_x = lo_y and the smaller id comes first. If fewer than n rows come before y, (lo_y, id_y) is
at most the n-th smallest (hi, id) (otherwise the n rows up to it all come before y). So the rows
whose (lo, id) reaches no further than that bound hold the queue's first n rows, in any part of
the book: each shard keeps those of its own rows (`queue_head`), and the page merges the shards'
heads (`head_candidates`) and lets the database order the few hundred rows left. A key known
exactly (lo = hi: no margin ratio, all stored alike as null) ties by id alone, so thousands of
accounts without equity leave the first n of them, not all.
"""

import numpy as np

# The stored figures are the floats to 15 significant digits rounded to 12 or 18 decimals
# (SQLite: 10 places), and the key's float subtraction rounds once more: an error far below
# 1e-9 + 1e-12 × |operands| for any figure a book holds.
ABSOLUTE_ERROR = 1e-9
RELATIVE_ERROR = 1e-12
# The key of a null margin ratio (no equity): beyond any stored ratio (capped at 1e7), on the
# side its database sorts nulls to. So large that lo = hi: every null is this key exactly.
NULL_KEY = 1e300


def key_error(*operands: np.ndarray) -> np.ndarray:
    """How far the stored key of a row may lie from its float key."""
    return ABSOLUTE_ERROR + RELATIVE_ERROR * sum(np.abs(np.nan_to_num(x)) for x in operands)


def _within_bound(lo: np.ndarray, hi: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Which rows have (lo, id) at most the n-th smallest (hi, id) (every row when there are
    no more than n)."""
    if len(hi) <= n:
        return np.ones(len(hi), dtype=bool)
    bound = np.partition(hi, n - 1)[n - 1]
    below = np.count_nonzero(hi < bound)
    bound_id = np.sort(ids[hi == bound])[n - 1 - below]
    return (lo < bound) | ((lo == bound) & (ids <= bound_id))


def queue_head(key: np.ndarray, error: np.ndarray, account_ids: np.ndarray, n: int) -> list:
    """[lo, hi, account id] of the rows that may be among the first `n` of `key`'s order (every
    row when there are no more than `n`), lowest lo first."""
    lo, hi = key - error, key + error
    keep = np.flatnonzero(_within_bound(lo, hi, account_ids, n))
    keep = keep[np.argsort(lo[keep], kind="stable")]
    return [
        list(row)
        for row in zip(
            lo[keep].tolist(), hi[keep].tolist(), account_ids[keep].tolist(), strict=True
        )
    ]


def head_candidates(heads: list[list], n: int) -> list[int]:
    """The account ids among several heads (each kept for at least `n` rows) that may be among
    the first `n` rows of them all."""
    if not heads:
        return []
    lo, hi, ids = np.array(heads, dtype=float).T
    ids = ids.astype(np.int64)
    return ids[_within_bound(lo, hi, ids, n)].tolist()

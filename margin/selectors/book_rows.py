"""The rows the vectorized book is built from (accounts, open positions, non-zero wallet and
isolated-margin ledger lines), read in three packed queries, and a copy of each shard's rows
that the worker revaluing it leaves for the next (any process of the machine), brought up to
date each tick by reading again only the accounts changed since.

Every write to those tables (any service, a raw QuerySet.update, a COPY, the tick's own state
changes) is noted by the database itself in margin_bookchange: one row per account and
statement, with the writing transaction's id (`margin.dbtriggers.book_change_log`). A copy
keeps the snapshot taken just before its rows were read; reading again the accounts noted by
the transactions that snapshot does not see (in progress then, or begun after: whether they
committed before or after the read, in whatever order) brings the copy up to what a full read
would return. Never "the highest change seen": ids are handed out when transactions write,
not when they commit.

The copy is used on PostgreSQL outside any transaction only (what it holds was committed);
the embedded demo (SQLite) reads its small book whole every tick.
"""

import hashlib
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce

from margin.db import rows as sql_rows
from margin.dbtriggers import BOOK_CHANGES, BOOK_CHANGES_HORIZON
from margin.models import LedgerAccount, LedgerAccountKind, MarginAccount, MarginMode, Position
from margin.packed_read import native_type, packed_columns

POSITION_TYPES = ("int8", "int8", "int8", "float8", "float8", "float8", "bool")
LINE_TYPES = ("int8", "int8", "int8", "int8", "float8", "bool")
# Past this share of a copy's accounts changed, one full read of the shard is cheaper than
# the list of ids (a funding settlement, an expiry: every account of the shard).
FULL_READ_SHARE = 0.25


def as_float(column: str) -> Cast:
    # PostgreSQL hands floats over directly: no Decimal per value for a 500k-row book.
    return Cast(column, FloatField())


def fetched(rows: QuerySet) -> list[tuple]:
    """The rows of a values_list query straight from the driver. Over a 500k-position book,
    Django's per-value converters and 100-row fetches cost about a second; every column here is
    already a plain int, float or str."""
    return sql_rows(*rows.query.sql_with_params())


def columns(rows: QuerySet, types: tuple[str, ...]) -> list[np.ndarray]:
    """A values_list query's columns as arrays: packed by PostgreSQL, tuples elsewhere."""
    copied = packed_columns(rows, types)
    if copied is not None:
        return copied
    found = fetched(rows)
    values = zip(*found, strict=True) if found else [()] * len(types)
    return [
        np.array(column, dtype=native_type(kind))
        for column, kind in zip(values, types, strict=True)
    ]


def _interned(values) -> np.ndarray:
    """An object column holding one Python object per distinct value: a cached shard keeps
    10,000 accounts' states and schemes as pointers to a handful of strings."""
    seen: dict = {}
    column = np.empty(len(values), dtype=object)
    column[:] = [seen.setdefault(value, value) for value in values]
    return column


def _by_pk(columns_: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Columns ordered by their first (the row's pk): the same order however they were read."""
    order = np.argsort(columns_[0], kind="stable")
    return tuple(column[order] for column in columns_)


@dataclass(frozen=True)
class BookRows:
    """The book's rows of some accounts, each table ordered by its pk.

    positions: (pk, account, instrument, quantity, entry price, leverage, isolated) of every
    open position; lines: (pk, position or 0, account, asset, balance, isolated) of every
    non-zero cross wallet and isolated margin. `account_fields`: the MarginAccount columns
    asked for, as object arrays in account order."""

    account_ids: np.ndarray
    tier_ids: np.ndarray
    owners: np.ndarray
    shares_owner: np.ndarray
    account_fields: dict[str, np.ndarray]
    positions: tuple[np.ndarray, ...]
    lines: tuple[np.ndarray, ...]

    @property
    def nbytes(self) -> int:
        arrays = (
            self.account_ids,
            self.tier_ids,
            self.owners,
            self.shares_owner,
            *self.account_fields.values(),
            *self.positions,
            *self.lines,
        )
        return sum(array.nbytes for array in arrays)

    def replaced(self, account_ids: np.ndarray, fresh: "BookRows") -> "BookRows":
        """These rows with every row of `account_ids` replaced by `fresh`'s (their rows read
        again: an account, position or line missing from `fresh` is gone)."""
        keep = ~np.isin(self.account_ids, account_ids)
        order = np.argsort(np.concatenate([self.account_ids[keep], fresh.account_ids]))

        def accounts(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
            return np.concatenate([mine[keep], theirs])[order]

        def table(mine: tuple, theirs: tuple, account_column: int) -> tuple[np.ndarray, ...]:
            kept = ~np.isin(mine[account_column], account_ids)
            return _by_pk([np.concatenate([m[kept], t]) for m, t in zip(mine, theirs, strict=True)])

        return BookRows(
            account_ids=accounts(self.account_ids, fresh.account_ids),
            tier_ids=accounts(self.tier_ids, fresh.tier_ids),
            owners=accounts(self.owners, fresh.owners),
            shares_owner=accounts(self.shares_owner, fresh.shares_owner),
            account_fields={
                name: accounts(column, fresh.account_fields[name])
                for name, column in self.account_fields.items()
            },
            positions=table(self.positions, fresh.positions, 1),
            lines=table(self.lines, fresh.lines, 2),
        )


def book_rows_read(
    *,
    account_range: tuple[int, int] | None = None,
    account_ids: list[int] | None = None,
    account_fields: tuple[str, ...] = (),
) -> BookRows:
    """The rows of every account, those with ids in `account_range` (first, last, inclusive),
    or those of `account_ids`, from the database."""
    accounts = MarginAccount.objects.order_by("pk")
    # Every open position, options too: a shard's positions are one scan of the account index,
    # and a second scan only to find no option costs as much (0.2 s at 1,000,000 accounts).
    positions = Position.objects.exclude(quantity=0)
    ledger = LedgerAccount.objects.exclude(balance=0).filter(
        kind__in=(LedgerAccountKind.WALLET, LedgerAccountKind.ISOLATED)
    )
    if account_range is not None:
        first, last = account_range
        accounts = accounts.filter(pk__gte=first, pk__lte=last)
        positions = positions.filter(margin_account_id__gte=first, margin_account_id__lte=last)
        ledger = ledger.filter(margin_account_id__gte=first, margin_account_id__lte=last)
    if account_ids is not None:
        accounts = accounts.filter(pk__in=account_ids)
        positions = positions.filter(margin_account_id__in=account_ids)
        ledger = ledger.filter(margin_account_id__in=account_ids)
    # Django's own iteration: the caller's fields may need its converters (datetimes on SQLite).
    account_rows = list(
        accounts.values_list("pk", "credit_tier_id", "owner_id", "shares_owner", *account_fields)
    )
    account_columns = list(zip(*account_rows, strict=True)) or [()] * (4 + len(account_fields))
    position_columns = columns(
        positions.values_list(
            "pk",
            "margin_account_id",
            "instrument_id",
            as_float("quantity"),
            as_float("entry_price"),
            as_float("leverage"),
            ExpressionWrapper(Q(margin_mode=MarginMode.ISOLATED), output_field=BooleanField()),
        ),
        POSITION_TYPES,
    )
    line_columns = columns(
        ledger.values_list(
            "pk",
            Coalesce("position_id", Value(0)),
            "margin_account_id",
            "asset_id",
            as_float("balance"),
            ExpressionWrapper(Q(kind=LedgerAccountKind.ISOLATED), output_field=BooleanField()),
        ),
        LINE_TYPES,
    )
    return BookRows(
        account_ids=np.array(account_columns[0], dtype=np.int64),
        tier_ids=np.array(account_columns[1], dtype=np.int64),
        owners=np.array(account_columns[2], dtype=np.int64),
        shares_owner=np.array(account_columns[3], dtype=bool),
        account_fields={
            name: _interned(column)
            for name, column in zip(account_fields, account_columns[4:], strict=True)
        },
        # In the scan's order, then sorted here: sorting 125,000 ids costs a few ms,
        # PostgreSQL's sort of the rows it aggregates (spilled to disk past work_mem) ten
        # times that.
        positions=_by_pk(position_columns),
        lines=_by_pk(line_columns),
    )


@dataclass(frozen=True)
class BookRead:
    """How a shard's rows were read: from the machine's copy (`cached`) or not, and how many
    accounts' rows came from the database (all of them when not cached)."""

    cached: bool = False
    accounts_read: int = 0


@dataclass(frozen=True)
class _Copy:
    rows: BookRows
    # The snapshot taken just before the rows were read (pg_snapshot as text): the changes of
    # transactions it does not see may be missing from them.
    snapshot: str


def _directory() -> Path:
    """This database's copies: one directory per server and database oid (a database dropped
    and created again under its name, or copied, has a new oid: never another's copy)."""
    ((oid,),) = sql_rows("SELECT oid FROM pg_database WHERE datname = current_database()")
    server = connection.settings_dict
    return Path(settings.BOOK_CACHE_DIR) / f"{server['HOST'] or 'local'}-{server['PORT']}-{oid}"


def book_copies_clear() -> None:
    """Remove every copy of every database (tests, whose database is emptied by TRUNCATE,
    which notes no change)."""
    shutil.rmtree(settings.BOOK_CACHE_DIR, ignore_errors=True)


def _copying() -> bool:
    return (
        settings.BOOK_CACHE_MAX_MB > 0
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


def _snapshot() -> str:
    """A snapshot taken now, before the reads it covers: every transaction it sees had
    committed, so a read after this sees it too."""
    ((snapshot,),) = sql_rows("SELECT pg_current_snapshot()::text")
    return snapshot


def _changes_since(first: int, last: int, snapshot: str) -> tuple[str, bool, list[int]]:
    """In one snapshot: itself, whether the log still holds every change `snapshot` may not
    see (not pruned past its xmin), and the accounts of first..last noted by transactions
    `snapshot` does not see (in progress when it was taken, or begun after). Exact, where
    the xmin alone would count every change since the oldest transaction then open on the
    server (a long report, a dump) as unseen."""
    ((now, complete, changed),) = sql_rows(
        f"SELECT pg_current_snapshot()::text, "
        f"(SELECT pruned_below <= pg_snapshot_xmin(%s::pg_snapshot) "
        f"FROM {BOOK_CHANGES_HORIZON}), "
        f"ARRAY(SELECT DISTINCT account_id FROM {BOOK_CHANGES} "
        "WHERE account_id BETWEEN %s AND %s AND xid >= pg_snapshot_xmin(%s::pg_snapshot) "
        "AND NOT pg_visible_in_snapshot(xid, %s::pg_snapshot))",
        [snapshot, first, last, snapshot, snapshot],
    )
    return now, complete, changed


def _private(directory: Path) -> bool:
    """Whether the copies' directory and the one holding it are this user's alone (or not
    made yet): a copy is unpickled, so nobody else may have been able to write or rename one."""
    for folder in (directory, directory.parent):
        try:
            found = folder.stat()
        except FileNotFoundError:
            continue
        if found.st_uid != os.getuid() or found.st_mode & 0o022:
            return False
    return True


def _loaded(path: Path) -> _Copy | None:
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except FileNotFoundError:
        return None


def _newest_first(directory: Path) -> list[tuple[float, int, str]]:
    """(modified, size, path) of the directory's files, the newest first."""
    found = []
    for entry in os.scandir(directory):
        try:
            stat = entry.stat()
        except FileNotFoundError:  # dropped by another worker meanwhile
            continue
        found.append((stat.st_mtime, stat.st_size, entry.path))
    return sorted(found, reverse=True)


def _kept(path: Path, copy: _Copy) -> None:
    """Write `copy` in place of the shard's last one (a whole file renamed over it: a reader
    in another process opens the old or the new, never half of one), then drop the least
    recently written copies of the database past BOOK_CACHE_MAX_MB."""
    path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    written = path.with_name(f"{path.name}.{os.getpid()}")
    with written.open("wb") as handle:
        pickle.dump(copy, handle, protocol=pickle.HIGHEST_PROTOCOL)
    written.replace(path)
    held = 0
    for _, size, name in _newest_first(path.parent):
        held += size
        if held > settings.BOOK_CACHE_MAX_MB * 2**20:
            Path(name).unlink(missing_ok=True)


def shard_book_rows(
    first: int, last: int, account_fields: tuple[str, ...]
) -> tuple[BookRows, BookRead]:
    """The rows of the accounts first..last: the copy of them a worker on this machine left
    (BOOK_CACHE_DIR, any process's) brought up to date (the accounts changed since it was
    read, read again), or all of them read afresh when there is none, when the change log has
    been pruned past the copy's snapshot, or when most of its accounts changed. Kept for the next
    tick, within BOOK_CACHE_MAX_MB. Never through a directory someone else could write to."""
    fields = hashlib.sha256(" ".join(account_fields).encode()).hexdigest()[:12]
    path = _directory() / f"{first}-{last}-{fields}.pickle" if _copying() else None
    if path is None or not _private(path.parent):
        rows = book_rows_read(account_range=(first, last), account_fields=account_fields)
        return rows, BookRead(accounts_read=len(rows.account_ids))
    copy = _loaded(path)
    if copy is not None:
        snapshot, complete, changed = _changes_since(first, last, copy.snapshot)
        if complete and len(changed) <= FULL_READ_SHARE * len(copy.rows.account_ids):
            rows = copy.rows
            if changed:
                fresh = book_rows_read(account_ids=changed, account_fields=account_fields)
                rows = rows.replaced(np.array(changed, dtype=np.int64), fresh)
            _kept(path, _Copy(rows=rows, snapshot=snapshot))
            return rows, BookRead(cached=True, accounts_read=len(changed))
    snapshot = _snapshot()
    rows = book_rows_read(account_range=(first, last), account_fields=account_fields)
    _kept(path, _Copy(rows=rows, snapshot=snapshot))
    return rows, BookRead(accounts_read=len(rows.account_ids))

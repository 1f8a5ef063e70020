"""The market every account's figures are read on now, read once per market tick in a process.

Each trader's poll (`trader:live`, every 2 s) read the whole market again: every instrument's
mark and series terms, the prices and depths, the parameters in force, and the perpetuals'
funding outlook from the mark history since the last funding time: 9 of its 18 queries and most
of its CPU (`make loadtest`: 180 traders, 90 polls a second, all reading the same thing, which a
market tick changes once a second).

`market_now()` keeps the last read in the process and reads again when it is
`MARKET_READ_CACHE_S` old (what depends on the time of the read: an option's time to expiry, a
parameter version taking effect, the funding time due, is at most that old) or its key has
moved. The key is a fingerprint of the rows the read comes from, one small query: PostgreSQL's row
versions (`xmin`, the writing transaction's id, new on every insert and update) summed, with the
row counts, over the marks, prices, assets, instruments, parameter versions and funding rates;
the newest bracket and revaluation tick; the number of house ledger accounts. A write to any of
them (the market tick, a listing, an expiry, a parameter change) changes the key once it is
committed, so the next read sees it at once, as an uncached read would.

Only reads use it (`figures_now`, the funding outlook of a position row): a write reads the
market under its locks (`account_state_lock`). What it holds is shared by the process's threads
and never changed in place. Inside a transaction, on SQLite (the embedded demo) and with
`MARKET_READ_CACHE_S` 0 every call reads afresh.
"""

import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from margin.db import rows, table
from margin.models import (
    Asset,
    AssetPrice,
    Bracket,
    FundingRate,
    Instrument,
    LedgerAccount,
    MarkPrice,
    ParameterVersion,
    RevaluationTick,
)
from margin.selectors.accounts import market_load
from margin.selectors.funding import FundingOutlook, funding_outlooks
from margin.selectors.parameters import parameters_in_force


@dataclass(frozen=True)
class MarketNow:
    key: tuple | None
    read_at_s: float  # the wall clock's (timezone.now()) epoch seconds
    # What `market_load()` returns: the keyword arguments of every `AccountState`.
    market: dict
    parameters: ParameterVersion
    # Symbol → the outlook of every active perpetual.
    funding: dict[str, FundingOutlook]


def _versions(model) -> str:
    return f"(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM {table(model)})"


def _newest(model) -> str:
    return f"(SELECT coalesce(max(id), 0) FROM {table(model)})"


def _fingerprint_sql() -> str:
    return "SELECT " + ", ".join(
        [
            *map(_versions, (MarkPrice, AssetPrice, Asset, Instrument, ParameterVersion)),
            _versions(FundingRate),
            _newest(Bracket),
            _newest(RevaluationTick),
            # House accounts are never removed; a count uses the index where max(id) would not.
            f"(SELECT count(*) FROM {table(LedgerAccount)} WHERE margin_account_id IS NULL)",
        ]
    )


def _key() -> tuple | None:
    # Inside a transaction (a write, a test's) every write of its own carries one transaction
    # id, so the fingerprint would not move between two of them: it reads afresh.
    if (
        settings.MARKET_READ_CACHE_S <= 0
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
    ):
        return None
    return rows(_fingerprint_sql())[0]


def _fresh(read: MarketNow | None, key: tuple, now_s: float) -> bool:
    return (
        read is not None
        and read.key == key
        and now_s - read.read_at_s < settings.MARKET_READ_CACHE_S
    )


_last: MarketNow | None = None
# One thread of the process reads a new tick's market; the others that meet the new key wait for
# it (with several threads a process, they would all read the same on a tick's first polls).
_reading = threading.Lock()


def _read(key: tuple | None, now_s: float) -> MarketNow:
    return MarketNow(
        key=key,
        read_at_s=now_s,
        market=market_load(),
        parameters=parameters_in_force(),
        funding=funding_outlooks(now=timezone.now()),
    )


def market_now() -> MarketNow:
    """The market as it stands, read again only when the key has moved since the last read."""
    global _last
    key = _key()
    now_s = timezone.now().timestamp()
    if key is None:
        return _read(None, now_s)
    if not _fresh(_last, key, now_s):
        with _reading:
            if not _fresh(_last, key, now_s):
                _last = _read(key, now_s)
    return _last

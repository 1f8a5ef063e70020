"""The book (every open position with its collateral) as the vectorized engine takes it: read
straight from PostgreSQL in a handful of column queries, and the desk's process-wide copy of
it, reused while nothing in it has changed."""

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from django.db.models import (
    Max,
)
from django.utils import timezone

from margin.db import rows as sql_rows
from margin.engine.option_stress import HeldOptions
from margin.engine.options_vector import OptionBook, OptionMarket, OptionPositions, OptionSeries
from margin.engine.vector import Book, BracketMatrix, HaircutMatrix
from margin.market.clock import market_days_between
from margin.models import (
    Asset,
    AssetPrice,
    AuditEntry,
    CreditTier,
    Instrument,
    Journal,
    MarginAccount,
    MarkPrice,
    ParameterVersion,
    Position,
)
from margin.selectors.accounts import LEAST_EXPIRY_DAYS, aware
from margin.selectors.book_rows import BookRead, as_float, book_rows_read, columns, shard_book_rows
from margin.selectors.liquidity import (
    liquidity_terms,
    owner_position_quantities,
    owner_wallet_quantities,
)
from margin.selectors.parameters import engine_terms, parameters_in_force


@dataclass(frozen=True)
class BookSlice:
    """A vector Book with its marks and asset prices and the ids back to the database: account
    row i is MarginAccount `account_ids[i]`, position row j is Position `position_ids[j]`,
    instrument row k is Instrument `instrument_ids[k]`, asset row a is Asset `asset_ids[a]`."""

    book: Book
    marks: np.ndarray
    asset_prices: np.ndarray
    account_ids: np.ndarray
    position_ids: np.ndarray
    instrument_ids: np.ndarray
    asset_ids: np.ndarray
    parameter_version: int
    # Whether any account of the slice holds an option (`option_book_of` reads them only then).
    holds_options: bool
    owners: np.ndarray  # the owner (user id) of each account row
    # The MarginAccount columns the caller asked for (`engine_book`'s `account_fields`), each a
    # list in account row order: read in the same query as the book's accounts.
    account_fields: dict[str, list] = field(default_factory=dict)
    # Whether the rows came from the machine's copy of the shard (`book_rows`), and how many
    # accounts' rows were read from the database.
    read: BookRead = field(default_factory=BookRead)


def _rows_of(ids: np.ndarray, values) -> np.ndarray:
    return np.searchsorted(ids, np.asarray(values, dtype=np.int64))


def engine_book(
    account_ids: Iterable[int] | None = None,
    *,
    account_range: tuple[int, int] | None = None,
    parameters: ParameterVersion | None = None,
    volatility: dict | None = None,
    account_fields: tuple[str, ...] = (),
) -> BookSlice:
    """The whole book, these accounts, or the accounts with ids in `account_range` (first, last,
    inclusive) as the vectorized engine's struct of arrays, loaded with a handful of values_list
    queries: open positions, non-zero cross wallets and isolated margins, at the latest marks
    and prices, under `parameters` (default: those in force now). The liquidity charges take
    each market's depth and its σ on the `volatility` estimate (a tick's; default the latest),
    and what each owner holds over all their accounts, in this slice or not. `account_fields`:
    more MarginAccount columns to read with the accounts (`BookSlice.account_fields`).

    A range is what revaluation shards use: a 10,000-id IN list costs PostgreSQL about a second
    to parse and plan per query, a range scan on the index almost nothing. A range's rows come
    from the machine's copy of them when there is one, with the accounts changed since read
    again (`margin.selectors.book_rows.shard_book_rows`; `BookSlice.read` says how)."""
    version = parameters or parameters_in_force()
    terms = engine_terms(version)
    liquidity = liquidity_terms(version, volatility)
    read = BookRead()
    if account_range is not None and account_ids is None:
        rows, read = shard_book_rows(*account_range, account_fields)
    else:
        rows = book_rows_read(
            account_range=account_range,
            account_ids=None if account_ids is None else sorted(set(account_ids)),
            account_fields=account_fields,
        )
    ids, owners = rows.account_ids, rows.owners
    tier_codes = dict(CreditTier.objects.values_list("pk", "code"))
    tier_pks, tier_of_row = np.unique(rows.tier_ids, return_inverse=True)
    tiers = [terms.credit_tiers[tier_codes[pk]] for pk in tier_pks.tolist()]
    # Owners holding another account, in this slice or not (each of their accounts says so).
    shared = sorted(set(owners[rows.shares_owner].tolist()))

    instruments = list(
        Instrument.objects.filter(symbol__in=terms.brackets)
        .order_by("pk")
        .values_list("pk", "symbol", "underlying_id")
    )
    instrument_ids = np.array([pk for pk, _, _ in instruments], dtype=np.int64)
    assets = list(Asset.objects.order_by("pk").values_list("pk", "symbol", "is_settlement"))
    asset_ids = np.array([pk for pk, _, _ in assets], dtype=np.int64)
    settlement = [n for n, (_, _, is_settlement) in enumerate(assets) if is_settlement]
    marks = dict(MarkPrice.objects.values_list("instrument_id", as_float("mark_price")))
    prices = dict(AssetPrice.objects.values_list("asset_id", as_float("price")))

    position_columns = rows.positions
    # Options are revalued by the portfolio grid, not as linear rows of the book.
    linear = np.isin(
        position_columns[2],
        list(
            Instrument.objects.filter(
                kind__in=(Instrument.Kind.PERPETUAL, Instrument.Kind.FUTURE)
            ).values_list("pk", flat=True)
        ),
    )
    holds_options = not linear.all()
    position_ids, pos_account, pos_instrument, quantity, entry, leverage, isolated = (
        column[linear] for column in position_columns
    )
    # Cross wallets and isolated margins, one ledger line each.
    _, line_position, col_account, col_asset, line_balance, line_isolated = rows.lines
    held_by, balances = line_position[line_isolated], line_balance[line_isolated]
    wallet = ~line_isolated
    col_account, col_asset, col_quantity = (
        col_account[wallet],
        col_asset[wallet],
        line_balance[wallet],
    )
    isolated_margin = np.zeros(len(position_ids))
    if len(held_by) and len(position_ids):
        at = np.searchsorted(position_ids, held_by)
        found = (at < len(position_ids)) & (
            position_ids[np.minimum(at, len(position_ids) - 1)] == held_by
        )
        isolated_margin[at[found]] = balances[found]
    pos_row, col_row = _rows_of(ids, pos_account), _rows_of(ids, col_account)
    book = Book(
        n_accounts=len(ids),
        haircut_scale=np.array([float(t.haircut_scale) for t in tiers])[tier_of_row],
        mm_scale=np.array([float(t.mm_scale) for t in tiers])[tier_of_row],
        pos_account=pos_row,
        pos_instrument=_rows_of(instrument_ids, pos_instrument),
        pos_side=np.sign(quantity),
        pos_quantity=np.abs(quantity),
        pos_entry_price=entry,
        pos_leverage=leverage,
        pos_isolated=isolated,
        pos_isolated_margin=isolated_margin,
        col_account=col_row,
        col_asset=_rows_of(asset_ids, col_asset),
        col_quantity=col_quantity,
        brackets=BracketMatrix.from_tables([terms.brackets[s] for _, s, _ in instruments]),
        haircuts=HaircutMatrix.from_tiers([terms.haircuts.get(s, ()) for _, s, _ in assets]),
        instrument_asset=_rows_of(asset_ids, [u for _, _, u in instruments]),
        asset_names=tuple(s for _, s, _ in assets),
        instrument_names=tuple(s for _, s, _ in instruments),
        # Pools are measured in the settlement coin (USDT counts 1:1 whatever its index).
        settlement_asset=settlement[0] if settlement else -1,
        instrument_impact=liquidity.instrument_impact(s for _, s, _ in instruments),
        asset_impact=liquidity.asset_impact(s for _, s, _ in assets),
        pos_owner_quantity=owner_position_quantities(
            owners[pos_row], pos_instrument, quantity, shared
        ),
        col_owner_quantity=owner_wallet_quantities(
            owners[col_row], col_asset, col_quantity, shared
        ),
    )
    return BookSlice(
        book=book,
        marks=np.array([marks.get(pk, np.nan) for pk in instrument_ids], dtype=np.float64),
        asset_prices=np.array([prices.get(pk, np.nan) for pk in asset_ids], dtype=np.float64),
        account_ids=ids,
        position_ids=position_ids,
        instrument_ids=instrument_ids,
        asset_ids=asset_ids,
        parameter_version=terms.version_number,
        holds_options=holds_options,
        owners=owners,
        account_fields={name: list(column) for name, column in rows.account_fields.items()},
        read=read,
    )


def account_id_runs(size: int) -> tuple[list[tuple[int, int]], int]:
    """Every margin account's id in order, cut into runs of `size`: the first and last id of
    each, and how many accounts there are. The ids come packed in one value: a million of them
    as Python ints through Django cost the tick's dispatcher half a second."""
    (ids,) = columns(MarginAccount.objects.order_by("pk").values_list("pk"), ("int8",))
    if not (np.diff(ids) > 0).all():
        # An aggregate over a sorted subquery keeps its order in practice, not by contract.
        ids = np.sort(ids)
    firsts, lasts = ids[::size].tolist(), ids[size - 1 :: size].tolist()
    if len(lasts) < len(firsts):
        lasts.append(int(ids[-1]))
    return list(zip(firsts, lasts, strict=True)), len(ids)


_book_lock = threading.Lock()


_book_cache: dict[tuple, BookSlice] = {}


def _book_version() -> tuple:
    """What the book's arrays depend on, read in a few cheap queries: every money movement is
    a journal, every desk change (credit tier...) an audit line, a leverage change touches the
    position, a new account gets a new key, and the parameters in force set the terms."""
    return (
        Journal.objects.aggregate(top=Max("pk"))["top"],
        AuditEntry.objects.aggregate(top=Max("pk"))["top"],
        Position.objects.aggregate(top=Max("updated_at"))["top"],
        MarginAccount.objects.aggregate(top=Max("pk"))["top"],
        parameters_in_force().pk,
    )


def desk_book() -> BookSlice:
    """The whole book for the desk's simulations: loaded once (seconds at 100,000 accounts)
    and reused while nothing in it has changed, with the latest marks and prices each time."""
    version = _book_version()
    with _book_lock:
        cached = _book_cache.get(version)
        if cached is None:
            cached = engine_book()
            _book_cache.clear()
            _book_cache[version] = cached
    marks = dict(MarkPrice.objects.values_list("instrument_id", "mark_price"))
    prices = dict(AssetPrice.objects.values_list("asset_id", "price"))
    return replace(
        cached,
        marks=np.array([float(marks.get(pk, np.nan)) for pk in cached.instrument_ids]),
        asset_prices=np.array([float(prices.get(pk, np.nan)) for pk in cached.asset_ids]),
    )


def option_book_of(slice_: BookSlice, *, now) -> tuple[OptionBook, OptionMarket] | None:
    """The option positions of the slice's accounts beside its linear book, priced as their
    latest marks were (the forward and implied vol kept on the mark), `now` setting each
    series' market days to expiry; None when they hold none. The premium was paid in cash,
    so each position counts at its whole value (entry 0), as in `AccountState.engine_input`."""
    if not (len(slice_.account_ids) and slice_.holds_options):
        return None
    held = sql_rows(
        *Position.objects.exclude(quantity=0)
        .filter(
            instrument__kind=Instrument.Kind.OPTION,
            margin_account_id__gte=int(slice_.account_ids[0]),
            margin_account_id__lte=int(slice_.account_ids[-1]),
            instrument__mark__implied_vol__isnull=False,
        )
        .order_by("pk")
        .values_list(
            "margin_account_id",
            "instrument_id",
            as_float("quantity"),
            "instrument__underlying_id",
            "instrument__option_type",
            as_float("instrument__strike"),
            "instrument__expiry",
            as_float("instrument__mark__index_price"),
            as_float("instrument__mark__implied_vol"),
        )
        .query.sql_with_params()
    )
    rows_of = {pk: n for n, pk in enumerate(slice_.account_ids.tolist())}
    held = [row for row in held if row[0] in rows_of]
    if not held:
        return None
    series_of: dict[int, int] = {}
    series_rows = []
    for _, instrument, _, underlying, option_type, strike, expiry, forward, vol in held:
        if instrument not in series_of:
            series_of[instrument] = len(series_rows)
            days = max(market_days_between(now, aware(expiry)), float(LEAST_EXPIRY_DAYS))
            key = int(np.searchsorted(slice_.asset_ids, underlying))
            series_rows.append((key, option_type == "call", strike, days, forward, vol))
    key, is_call, strike, days, forward, vol = (np.array(c) for c in zip(*series_rows, strict=True))
    quantity = np.array([row[2] for row in held], dtype=np.float64)
    book = slice_.book
    options = OptionBook(
        book=book,
        series=OptionSeries(
            underlying=key.astype(np.int64),
            is_call=is_call.astype(bool),
            strike=strike.astype(np.float64),
            expiry_days=days.astype(np.float64),
        ),
        positions=OptionPositions(
            account=np.array([rows_of[row[0]] for row in held], dtype=np.int64),
            series=np.array([series_of[row[1]] for row in held], dtype=np.int64),
            side=np.sign(quantity),
            quantity=np.abs(quantity),
            entry_price=np.zeros(len(held)),
        ),
        n_keys=book.n_assets,
        portfolio=np.zeros(book.n_accounts, dtype=bool),
        key_names=book.asset_names,
    )
    market = OptionMarket(forwards=forward.astype(np.float64), vols=vol.astype(np.float64))
    return options, market


def held_options(slice_: BookSlice) -> HeldOptions | None:
    """The slice's option positions at their latest marks (forward and vol), days to expiry
    counted from now, for the desk's stress runs and cascades; None when nobody holds one."""
    held = option_book_of(slice_, now=timezone.now())
    return None if held is None else HeldOptions(*held)

"""Shared reads: a trader's accounts, ledger history, and accounts shaped for the engine."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.shortcuts import get_object_or_404

from margin.engine.reference import AccountQuote
from margin.engine.types import AccountInput
from margin.engine.vector import Book, BracketMatrix, HaircutMatrix
from margin.models import (
    Asset,
    AssetPrice,
    Bracket,
    CreditTierTerms,
    Entry,
    HaircutTier,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarginMode,
    MarkPrice,
    ParameterVersion,
    Position,
)
from margin.packed_read import native_type, packed_columns
from margin.services.account_state import account_state_load, account_states_load
from margin.services.reference import engine_terms, parameters_in_force
from margin.services.sql import rows as sql_rows


def accounts_of(user) -> QuerySet[MarginAccount]:
    return MarginAccount.objects.filter(owner=user).select_related("credit_tier").order_by("pk")


def account_of_user_or_404(user, pk: int) -> MarginAccount:
    """The user's own margin account `pk`; anyone else's is a 404, as if it did not exist."""
    return get_object_or_404(accounts_of(user), pk=pk)


def ledger_history(*, account: MarginAccount, filters: dict | None = None) -> QuerySet[Entry]:
    """The entries on the account's ledger accounts (cross wallets and isolated margins), newest
    first. `filters`: `asset` (symbol), `kind` (journal kind), `since` / `until` (datetimes)."""
    filters = filters or {}
    entries = Entry.objects.filter(ledger_account__margin_account=account)
    if filters.get("asset"):
        entries = entries.filter(asset__symbol=filters["asset"])
    if filters.get("kind"):
        entries = entries.filter(journal__kind=filters["kind"])
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since:
        entries = entries.filter(journal__created_at__gte=since)
    if until:
        entries = entries.filter(journal__created_at__lt=until)
    return entries.select_related(
        "journal", "asset", "ledger_account__position__instrument"
    ).order_by("-pk")


def account_quote(account: MarginAccount) -> AccountQuote:
    """The engine's figures of the account now (positions' ids are their primary keys)."""
    return account_state_load(account, lock=False).quote()


def engine_accounts(account_ids: Iterable[int]) -> dict[int, AccountInput]:
    """The engine inputs of these accounts (reference engine); positions' ids are their
    primary keys (see `PositionState.engine_id`)."""
    return {pk: state.engine_input() for pk, state in account_states_load(account_ids).items()}


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


def _as_float(field: str) -> Cast:
    # PostgreSQL hands floats over directly: no Decimal per value for a 500k-row book.
    return Cast(field, FloatField())


def _fetched(rows: QuerySet) -> list[tuple]:
    """The rows of a values_list query straight from the driver. Over a 500k-position book,
    Django's per-value converters and 100-row fetches cost about a second; every column here is
    already a plain int, float or str."""
    return sql_rows(*rows.query.sql_with_params())


def _columns(rows: QuerySet, types: tuple[str, ...]) -> list[np.ndarray]:
    """A values_list query's columns as arrays: packed by PostgreSQL, tuples elsewhere."""
    copied = packed_columns(rows, types)
    if copied is not None:
        return copied
    fetched = _fetched(rows)
    values = zip(*fetched, strict=True) if fetched else [()] * len(types)
    return [
        np.array(column, dtype=native_type(kind))
        for column, kind in zip(values, types, strict=True)
    ]


def _rows_of(ids: np.ndarray, values) -> np.ndarray:
    return np.searchsorted(ids, np.asarray(values, dtype=np.int64))


def engine_book(
    account_ids: Iterable[int] | None = None,
    *,
    account_range: tuple[int, int] | None = None,
    parameters: ParameterVersion | None = None,
) -> BookSlice:
    """The whole book, these accounts, or the accounts with ids in `account_range` (first, last,
    inclusive) as the vectorized engine's struct of arrays, loaded with a handful of values_list
    queries: open positions, non-zero cross wallets, isolated margins, at the latest marks and
    prices, under `parameters` (default: those in force now).

    A range is what revaluation shards use: a 10,000-id IN list costs PostgreSQL about a second
    to parse and plan per query, a range scan on the index almost nothing."""
    terms = engine_terms(parameters or parameters_in_force())
    accounts = MarginAccount.objects.order_by("pk")
    positions = Position.objects.exclude(quantity=0).order_by("pk")
    ledger = LedgerAccount.objects.exclude(balance=0)
    if account_range is not None:
        first, last = account_range
        accounts = accounts.filter(pk__gte=first, pk__lte=last)
        positions = positions.filter(margin_account_id__gte=first, margin_account_id__lte=last)
        ledger = ledger.filter(margin_account_id__gte=first, margin_account_id__lte=last)
    if account_ids is not None:
        wanted = sorted(set(account_ids))
        accounts = accounts.filter(pk__in=wanted)
        positions = positions.filter(margin_account_id__in=wanted)
        ledger = ledger.filter(margin_account_id__in=wanted)
    account_rows = _fetched(accounts.values_list("pk", "credit_tier__code"))
    ids = np.array([pk for pk, _ in account_rows], dtype=np.int64)
    tiers = [terms.credit_tiers[code] for _, code in account_rows]

    instruments = list(
        Instrument.objects.filter(symbol__in=terms.brackets)
        .order_by("pk")
        .values_list("pk", "symbol", "underlying_id")
    )
    instrument_ids = np.array([pk for pk, _, _ in instruments], dtype=np.int64)
    assets = list(Asset.objects.order_by("pk").values_list("pk", "symbol", "is_settlement"))
    asset_ids = np.array([pk for pk, _, _ in assets], dtype=np.int64)
    settlement = [n for n, (_, _, is_settlement) in enumerate(assets) if is_settlement]
    marks = dict(MarkPrice.objects.values_list("instrument_id", _as_float("mark_price")))
    prices = dict(AssetPrice.objects.values_list("asset_id", _as_float("price")))

    position_columns = _columns(
        positions.values_list(
            "pk",
            "margin_account_id",
            "instrument_id",
            _as_float("quantity"),
            _as_float("entry_price"),
            _as_float("leverage"),
            ExpressionWrapper(Q(margin_mode=MarginMode.ISOLATED), output_field=BooleanField()),
        ),
        ("int8", "int8", "int8", "float8", "float8", "float8", "bool"),
    )
    if not (np.diff(position_columns[0]) > 0).all():
        # An aggregate over a sorted subquery keeps its order in practice, not by contract.
        order = np.argsort(position_columns[0])
        position_columns = [column[order] for column in position_columns]
    position_ids, pos_account, pos_instrument, quantity, entry, leverage, isolated = (
        position_columns
    )
    isolated_margin = np.zeros(len(position_ids))
    held_by, balances = _columns(
        ledger.filter(kind=LedgerAccountKind.ISOLATED).values_list(
            "position_id", _as_float("balance")
        ),
        ("int8", "float8"),
    )
    if len(held_by) and len(position_ids):
        at = np.searchsorted(position_ids, held_by)
        found = (at < len(position_ids)) & (
            position_ids[np.minimum(at, len(position_ids) - 1)] == held_by
        )
        isolated_margin[at[found]] = balances[found]
    col_account, col_asset, col_quantity = _columns(
        ledger.filter(kind=LedgerAccountKind.WALLET).values_list(
            "margin_account_id", "asset_id", _as_float("balance")
        ),
        ("int8", "int8", "float8"),
    )
    book = Book(
        n_accounts=len(ids),
        haircut_scale=np.array([float(t.haircut_scale) for t in tiers], dtype=np.float64),
        mm_scale=np.array([float(t.mm_scale) for t in tiers], dtype=np.float64),
        pos_account=_rows_of(ids, pos_account),
        pos_instrument=_rows_of(instrument_ids, pos_instrument),
        pos_side=np.sign(quantity),
        pos_quantity=np.abs(quantity),
        pos_entry_price=entry,
        pos_leverage=leverage,
        pos_isolated=isolated,
        pos_isolated_margin=isolated_margin,
        col_account=_rows_of(ids, col_account),
        col_asset=_rows_of(asset_ids, col_asset),
        col_quantity=col_quantity,
        brackets=BracketMatrix.from_tables([terms.brackets[s] for _, s, _ in instruments]),
        haircuts=HaircutMatrix.from_tiers([terms.haircuts.get(s, ()) for _, s, _ in assets]),
        instrument_asset=_rows_of(asset_ids, [u for _, _, u in instruments]),
        asset_names=tuple(s for _, s, _ in assets),
        instrument_names=tuple(s for _, s, _ in instruments),
        # Pools are measured in the settlement coin (USDT counts 1:1 whatever its index).
        settlement_asset=settlement[0] if settlement else -1,
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
    )


@dataclass(frozen=True)
class LedgerDifferences:
    """Everything that would prove the book wrong; all empty when it is right."""

    assets_not_zero: list[tuple[str, Decimal]]  # asset, sum of all its entries
    journals_not_balanced: list[tuple[int, str, Decimal]]  # journal, asset, sum
    balances_off: list[tuple[int, str, Decimal, Decimal]]  # ledger account, asset, balance, sum
    entries_in_wrong_asset: int
    entries: int
    ledger_accounts: int

    @property
    def clean(self) -> bool:
        return not (
            self.assets_not_zero
            or self.journals_not_balanced
            or self.balances_off
            or self.entries_in_wrong_asset
        )


def ledger_differences() -> LedgerDifferences:
    """The whole book checked in the database: each asset's entries sum to zero, each journal
    balances per asset, each balance equals the sum of its entries, each entry is in its
    account's asset."""
    asset_totals = (
        Entry.objects.values("asset__symbol").annotate(total=Sum("amount")).exclude(total=0)
    )
    journals = (
        Entry.objects.values("journal_id", "asset__symbol")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("journal_id")
    )
    sums = (
        Entry.objects.filter(ledger_account=OuterRef("pk"))
        .values("ledger_account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    balances = (
        LedgerAccount.objects.annotate(total=Coalesce(Subquery(sums), Value(Decimal(0))))
        .exclude(balance=F("total"))
        .values_list("pk", "asset__symbol", "balance", "total")
        .order_by("pk")
    )
    return LedgerDifferences(
        assets_not_zero=[(row["asset__symbol"], row["total"]) for row in asset_totals],
        journals_not_balanced=[
            (row["journal_id"], row["asset__symbol"], row["total"]) for row in journals[:1000]
        ],
        balances_off=list(balances[:1000]),
        entries_in_wrong_asset=Entry.objects.exclude(asset=F("ledger_account__asset")).count(),
        entries=Entry.objects.count(),
        ledger_accounts=LedgerAccount.objects.count(),
    )


def version_terms(version: ParameterVersion) -> dict:
    """A version's child tables grouped for display: brackets per instrument, haircut tiers per
    asset, credit-tier scales."""
    brackets: dict[str, list] = {}
    for row in Bracket.objects.filter(version=version).select_related("instrument"):
        brackets.setdefault(row.instrument.symbol, []).append(row)
    haircuts: dict[str, list] = {}
    for row in HaircutTier.objects.filter(version=version).select_related("asset"):
        haircuts.setdefault(row.asset.symbol, []).append(row)
    return {
        "brackets": brackets,
        "haircuts": haircuts,
        "credit_terms": CreditTierTerms.objects.filter(version=version)
        .select_related("tier")
        .order_by("tier__rank"),
    }

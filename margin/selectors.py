"""Shared reads (signatures first; bodies land with the ledger)."""

from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet

from margin.engine.types import AccountInput
from margin.engine.vector import Book
from margin.models import Entry, MarginAccount


@dataclass(frozen=True)
class BookSlice:
    """A vector Book with its marks and asset prices and the ids back to the database: row i of
    the book's accounts is MarginAccount `account_ids[i]`, position row j is `position_ids[j]`."""

    book: Book
    marks: np.ndarray
    asset_prices: np.ndarray
    account_ids: np.ndarray
    position_ids: np.ndarray
    parameter_version: int


def accounts_of(user) -> QuerySet[MarginAccount]:
    raise NotImplementedError


def account_of_user_or_404(user, pk: int) -> MarginAccount:
    raise NotImplementedError


def ledger_history(*, account: MarginAccount, filters: dict | None = None) -> QuerySet[Entry]:
    raise NotImplementedError


def engine_accounts(account_ids) -> dict[int, AccountInput]:
    raise NotImplementedError


def engine_book(account_ids=None) -> BookSlice:
    raise NotImplementedError

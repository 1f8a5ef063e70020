"""How a write runs on one margin account in memory (`margin.selectors.accounts.AccountState`).

A service loads the state (locked, inside its transaction), plans the change on a copy, checks
the plan with the engine, then books it; a preview does the same without the lock and without
booking. The fingerprint of the state lets a confirm prove nothing moved since its preview.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from margin.engine.reference import AccountQuote
from margin.errors import ApplicationError
from margin.models import (
    MarginAccount,
)
from margin.selectors.accounts import AccountState, account_state_load, account_state_read
from margin.services.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_key_check,
)
from margin.services.ledger import QUANTUM, isolated_account_ensure, wallet_accounts_ensure

STALE_PREVIEW = "Prices or balances moved since the preview; review it again."


def _lock(alias: str) -> str:
    # SQLite locks the whole database instead.
    if connection.features.has_select_for_no_key_update:
        return f" FOR NO KEY UPDATE OF {alias}"
    return ""


def account_state_lock(account: MarginAccount | int) -> AccountState:
    """The account as it stands, inside a transaction, its row, positions and own ledger
    accounts locked in that order (see `margin.services.ledger`)."""
    return account_state_read(account, lock=_lock)


def wallet_id(state: AccountState, asset: str) -> int:
    """The account's cross wallet ledger account of `asset`, created on first use."""
    if asset in state.wallet_ids:
        return state.wallet_ids[asset]
    asset_id = state.asset_ids[asset]
    return wallet_accounts_ensure(margin_account_id=state.account_id, asset_ids=[asset_id])[
        asset_id
    ]


def isolated_id(state: AccountState, instrument: str, position_id: int) -> int:
    """The isolated margin ledger account of the position, created on first use."""
    known = state.positions.get(instrument)
    if known is not None and known.isolated_account_id is not None:
        return known.isolated_account_id
    return isolated_account_ensure(
        margin_account_id=state.account_id,
        position_id=position_id,
        asset_id=state.asset_ids[state.settlement],
    )


@dataclass(frozen=True)
class Receipt:
    """The result of a write, replayed as is for the same idempotency key."""

    operation: str
    margin_account_id: int
    journal_id: int | None = None
    fill_id: int | None = None
    position_id: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def as_json(self) -> dict:
        return {
            "operation": self.operation,
            "margin_account_id": self.margin_account_id,
            "journal_id": self.journal_id,
            "fill_id": self.fill_id,
            "position_id": self.position_id,
            "details": self.details,
        }


@dataclass(frozen=True)
class Preview:
    """A dry run: the engine's figures before and after, the fingerprint of the state they were
    computed on (pass it back as `expected_fingerprint`), and the refusal if the write would be
    refused (`after` is None when there is no after to show)."""

    operation: str
    before: AccountQuote
    after: AccountQuote | None
    fingerprint: str
    refusal: str | None = None
    details: dict[str, str] = field(default_factory=dict)


# Amounts are NUMERIC(38, 18): at most 20 digits before the point.
LARGEST_AMOUNT = Decimal("1e20")


def amount_parse(value, *, field: str, allow_zero: bool = False) -> Decimal:
    """A positive (or, with `allow_zero`, non-negative) decimal with at most 18 decimal places,
    or an ApplicationError naming `field`."""
    label = field.replace("_", " ").capitalize()
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError):
        raise ApplicationError(
            f"{label} must be a number, got {value!r}.", {field: "not a number"}
        ) from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        qualifier = "zero or positive" if allow_zero else "positive"
        raise ApplicationError(
            f"{label} must be {qualifier}, got {value}.", {field: f"must be {qualifier}"}
        )
    if amount >= LARGEST_AMOUNT or amount != amount.quantize(QUANTUM):
        raise ApplicationError(
            f"{label} must be below 10^20 with at most 18 decimal places, got {value}.",
            {field: "out of range"},
        )
    return amount


def asset_check(state: AccountState, asset: str) -> str:
    if asset not in state.asset_ids:
        raise ApplicationError(f"Unknown asset {asset!r}.", {"asset": "unknown asset"})
    return asset


def instrument_check(state: AccountState, instrument: str) -> str:
    if instrument not in state.instrument_ids or instrument not in state.terms.brackets:
        raise ApplicationError(
            f"Unknown instrument {instrument!r}.", {"instrument": "unknown instrument"}
        )
    if instrument not in state.marks:
        raise ApplicationError(
            f"{instrument} has no mark price yet.", {"instrument": "no mark price"}
        )
    return instrument


@dataclass(frozen=True)
class Plan:
    """A change worked out on the in-memory state: the state after it, or why it is refused."""

    after: AccountState | None
    refusal: str | None = None
    refusal_field: str | None = None
    details: dict[str, str] = field(default_factory=dict)


def preview_run[P: Plan](
    *, operation: str, account: MarginAccount, plan: Callable[[AccountState], P]
) -> Preview:
    """The engine's before and after of `plan` on the account as it stands; writes nothing."""
    state = account_state_load(account)
    planned = plan(state)
    return Preview(
        operation=operation,
        before=state.quote(),
        after=planned.after.quote() if planned.after is not None else None,
        fingerprint=state.fingerprint(),
        refusal=planned.refusal,
        details=planned.details,
    )


def write_run[P: Plan](
    *,
    operation: str,
    account: MarginAccount,
    request: dict,
    idempotency_key: str,
    expected_fingerprint: str | None,
    plan: Callable[[AccountState], P],
    book: Callable[[AccountState, P], Receipt],
) -> Receipt:
    """One write in one transaction: claim the idempotency key, lock the account (see the lock
    order in `margin.services.ledger`), refuse a stale preview, plan, refuse or book."""
    idempotency_key_check(idempotency_key)
    with transaction.atomic():
        record_id, first = idempotency_claim(
            user_id=account.owner_id,
            key=idempotency_key,
            operation=operation,
            request={"margin_account": account.pk, **request},
        )
        if first is not None:
            return Receipt(**first, replayed=True)
        state = account_state_lock(account)
        if expected_fingerprint is not None and expected_fingerprint != state.fingerprint():
            raise ApplicationError(STALE_PREVIEW, {"fingerprint": "stale"})
        planned = plan(state)
        if planned.refusal is not None:
            raise ApplicationError(planned.refusal, {planned.refusal_field or "__all__": "refused"})
        receipt = book(state, planned)
        idempotency_complete(record_id=record_id, response=receipt.as_json())
    return receipt


def as_text(value: Decimal) -> str:
    """A decimal for people and JSON: no exponent, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"

"""How a write on one margin account runs, and how each is declared once.

A write loads the state (locked, inside its transaction), plans the change on it, checks the
plan with the engine, then posts it; its preview does the same without the lock and without
posting. The fingerprint of the state lets a confirm prove nothing moved since its preview.
Each trader write is one `Write`: its plan and its posting, from which `preview` and `submit`
are made with the same arguments.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from inspect import Parameter, signature

from django.db import OperationalError, connection, transaction
from psycopg.errors import DeadlockDetected

from margin.engine.reference import AccountQuote
from margin.errors import ApplicationError
from margin.models import MarginAccount
from margin.selectors.accounts import AccountState, account_state_load
from margin.services.account_state import account_state_lock
from margin.services.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_key_check,
)
from margin.services.ledger import house_rows_last

STALE_PREVIEW = "Prices or balances moved since the preview; review it again."
DEADLOCK_ATTEMPTS = 3
"""A write that PostgreSQL chose as a deadlock's victim was rolled back whole (its idempotency
claim too), so it is run again, as PostgreSQL's manual advises for transactions it aborts."""

logger = logging.getLogger(__name__)


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
    post: Callable[[AccountState, P], Receipt],
) -> Receipt:
    """One write in one transaction: claim the idempotency key, lock the account (see the lock
    order in `margin.services.ledger`), refuse a stale preview, plan, refuse or post; the house
    balances move last (`house_rows_last`). A deadlock's victim is run again
    (`run_again_on_deadlock`): a safety net, the lock order leaves no cycle to lose."""
    idempotency_key_check(idempotency_key)

    def once() -> Receipt:
        with transaction.atomic(), house_rows_last():
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
                raise ApplicationError(
                    planned.refusal, {planned.refusal_field or "__all__": "refused"}
                )
            receipt = post(state, planned)
            idempotency_complete(record_id=record_id, response=receipt.as_json())
        return receipt

    return run_again_on_deadlock(once, f"{operation} on account {account.pk}")


def run_again_on_deadlock(transaction_run: Callable[[], Receipt], what: str) -> Receipt:
    """`transaction_run()`, run again up to DEADLOCK_ATTEMPTS times in all when PostgreSQL
    aborts it as a deadlock's victim; not when it is part of an outer transaction, which the
    deadlock has aborted too."""
    nested = connection.in_atomic_block
    for attempt in range(1, DEADLOCK_ATTEMPTS):
        try:
            return transaction_run()
        except OperationalError as error:
            if nested or not isinstance(error.__cause__, DeadlockDetected):
                raise
            logger.warning(
                "%s was a deadlock's victim (attempt %d of %d): run again",
                what,
                attempt,
                DEADLOCK_ATTEMPTS,
            )
    return transaction_run()


@dataclass(frozen=True)
class Write[P: Plan]:
    """One write, declared once. `plan(state, **arguments)` works the change out on the loaded
    state and writes nothing: a Plan with the state after it, or its refusal (an
    ApplicationError for input that cannot be planned at all). `post(state, plan, *, operation,
    actor)` writes the plan (its journal, fill and position rows) and returns its Receipt.
    `check(**arguments)`, when given, runs before the state is loaded, for what the state does
    not hold (an expired instrument).

    `preview(account=, **arguments)` is the dry run, `submit(account=, idempotency_key=,
    expected_fingerprint=, actor=, **arguments)` posts once per key; calling the write is its
    `submit`. The arguments are the plan's keyword parameters (`parameters`), each stored as
    text in the idempotency record's request."""

    operation: str
    plan: Callable[..., P]
    post: Callable[..., Receipt]
    check: Callable[..., None] | None = None

    @cached_property
    def parameters(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, parameter in signature(self.plan).parameters.items()
            if parameter.kind == Parameter.KEYWORD_ONLY
        )

    def _arguments(self, arguments: dict) -> dict:
        """The arguments with the plan's defaults filled in (the same request hashes the same
        whether a default was given or left out), refused before anything is read when they
        are not the plan's."""
        bound = signature(self.plan).bind(None, **arguments)
        bound.apply_defaults()
        arguments = {name: bound.arguments[name] for name in self.parameters}
        if self.check is not None:
            self.check(**arguments)
        return arguments

    def preview(self, *, account: MarginAccount, **arguments) -> Preview:
        arguments = self._arguments(arguments)
        return preview_run(
            operation=self.operation,
            account=account,
            plan=lambda state: self.plan(state, **arguments),
        )

    def submit(
        self,
        *,
        account: MarginAccount,
        idempotency_key: str,
        expected_fingerprint: str | None = None,
        actor=None,
        **arguments,
    ) -> Receipt:
        arguments = self._arguments(arguments)
        return write_run(
            operation=self.operation,
            account=account,
            request={
                name: None if value is None else str(value) for name, value in arguments.items()
            },
            idempotency_key=idempotency_key,
            expected_fingerprint=expected_fingerprint,
            plan=lambda state: self.plan(state, **arguments),
            post=lambda state, planned: self.post(
                state, planned, operation=self.operation, actor=actor
            ),
        )

    def __call__(self, **arguments) -> Receipt:
        return self.submit(**arguments)


def as_text(value: Decimal) -> str:
    """A decimal for people and JSON: no exponent, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"

"""Client-supplied idempotency keys: one booking per (user, key), whatever the concurrency.

The key is claimed first thing in the service's transaction by inserting its record; the
unique constraint (user, key) makes a concurrent claim of the same key wait for the first
transaction and then find its record, so the second one replays the first result instead of
booking again.
A refused request rolls its claim back with everything else: the key stays free.
"""

import hashlib
import json
from decimal import Decimal

from django.utils import timezone

from margin.db import execute, rows, table
from margin.errors import ApplicationError
from margin.models import IdempotencyRecord

MAX_KEY_LENGTH = IdempotencyRecord._meta.get_field("key").max_length


class IdempotencyConflict(ApplicationError):
    """The key was already used for a different request."""


def _canonical(value):
    """A number written any way ("100", "100.00", "1e2") is the same request."""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return value
    return format(number.normalize(), "f") if number.is_finite() else value


def request_hash(*, operation: str, request: dict) -> str:
    canonical = json.dumps(
        {"operation": operation, "request": {k: _canonical(v) for k, v in request.items()}},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_check(key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ApplicationError("An idempotency key is required.", {"idempotency_key": "required"})
    if len(key) > MAX_KEY_LENGTH:
        raise ApplicationError(
            f"The idempotency key is longer than {MAX_KEY_LENGTH} characters.",
            {"idempotency_key": "too long"},
        )
    return key


def idempotency_claim(
    *, user_id: int, key: str, operation: str, request: dict
) -> tuple[int | None, dict | None]:
    """Inside the service's transaction: (record id, None) when the key is new and now ours,
    (None, the first response) when this request was already done. A different request under
    the same key raises `IdempotencyConflict`."""
    digest = request_hash(operation=operation, request=request)
    # ON CONFLICT DO NOTHING waits for a transaction holding the same key: when that one
    # commits, no row comes back and its record is visible to the next statement.
    claimed = rows(
        f"INSERT INTO {table(IdempotencyRecord)} "
        "(user_id, key, operation, request_hash, response, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        [user_id, key, operation, digest, "{}", timezone.now()],
    )
    if claimed:
        return claimed[0][0], None
    first = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    if first.operation != operation or first.request_hash != digest:
        raise IdempotencyConflict(
            f"The idempotency key {key!r} was already used for a different request "
            f"({first.operation}); use a new key for a new request.",
            {"idempotency_key": "already used for a different request"},
        )
    return None, first.response


def idempotency_complete(*, record_id: int, response: dict) -> None:
    execute(
        f"UPDATE {table(IdempotencyRecord)} SET response = %s WHERE id = %s",
        [json.dumps(response), record_id],
    )


def idempotency_record_lock(
    *, user, key: str, operation: str, request_hash: str
) -> tuple[IdempotencyRecord, bool]:
    """The user's record of `key`, created empty if it is new (then True), and locked: inside
    the caller's transaction, a second request with the same key waits here until the first
    commits its answer."""
    return IdempotencyRecord.objects.select_for_update().get_or_create(
        user=user,
        key=key,
        defaults={"operation": operation, "request_hash": request_hash, "response": {}},
    )


def idempotency_record_answer(record: IdempotencyRecord, response: dict) -> None:
    """Store the answer a replay of the record's key gives."""
    record.response = response
    record.save(update_fields=["response"])

"""`Idempotency-Key` on POST: the first response per (user, key) is stored and replayed.

The record is written in the same transaction as the booking it answers, so either both exist
or neither does. A second request with the same key blocks on the record's unique index until
the first commits, then reads and replays it: one booking, byte-identical answers. Refusals
(4xx) roll the transaction back and are not stored, so a fixed request may reuse its key.
"""

import hashlib
import json
import re
from collections.abc import Callable
from functools import wraps

from django.db import transaction
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from margin.api.errors import IdempotencyKeyMissing, IdempotencyKeyReused
from margin.models import IdempotencyRecord
from margin.services.idempotency import idempotency_record_answer, idempotency_record_lock

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7e]{1,100}$"
RECORD_PREFIX = "api:"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Location",)


def idempotency_key(request, *, required: bool) -> str | None:
    """The request's key, checked; None when absent and optional."""
    key = request.headers.get(HEADER)
    if key is None and not required:
        return None
    if key is None or not re.fullmatch(KEY_PATTERN, key):
        raise IdempotencyKeyMissing
    return key


def request_fingerprint(request) -> str:
    """What "the same request" means: method, path, query and the JSON body, key order aside."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    text = "\n".join((request.method, request.path, request.META.get("QUERY_STRING", ""), body))
    return hashlib.sha256(text.encode()).hexdigest()


def _as_http(record: IdempotencyRecord, *, replayed: bool) -> HttpResponse:
    stored = record.response
    response = HttpResponse(
        stored["body"].encode(), status=stored["status"], content_type=stored["content_type"]
    )
    for name, value in stored["headers"].items():
        response[name] = value
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def run_once(request, *, key: str, operation: str, run: Callable[[], Response]) -> HttpResponse:
    """Answer with the stored response of `key`, or run the view and store its response."""
    fingerprint = request_fingerprint(request)
    with transaction.atomic():
        record, created = idempotency_record_lock(
            user=request.user,
            key=f"{RECORD_PREFIX}{key}",
            operation=operation,
            request_hash=fingerprint,
        )
        if not created:
            if record.request_hash != fingerprint:
                raise IdempotencyKeyReused
            return _as_http(record, replayed=True)
        answer = run()
        idempotency_record_answer(
            record,
            {
                "status": answer.status_code,
                "content_type": "application/json",
                "body": JSONRenderer().render(answer.data).decode(),
                "headers": {name: answer[name] for name in KEPT_HEADERS if name in answer},
            },
        )
    return _as_http(record, replayed=False)


def idempotent(*, required: bool = True):
    """Decorate a view's `post(self, request, *, idempotency_key, **kwargs)`.

    With `required=False` (pure computations such as the quote) a request without a key runs
    as is; with a key it is stored and replayed like any other.
    """

    def decorator(post):
        @wraps(post)
        def wrapped(view, request, *args, **kwargs):
            key = idempotency_key(request, required=required)
            if key is None:
                return post(view, request, *args, idempotency_key=None, **kwargs)
            operation = f"api:{view.__class__.__name__}"[:64]
            return run_once(
                request,
                key=key,
                operation=operation,
                run=lambda: post(view, request, *args, idempotency_key=key, **kwargs),
            )

        wrapped.idempotency_required = required
        return wrapped

    return decorator

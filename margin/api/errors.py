"""The DRF exception handler: every refusal becomes problem-details JSON with per-field errors.

Bad input of any kind (serializer, engine, service rule, idempotency, routing) maps to a 4xx;
only a real fault is left to Django as a 500.
"""

from decimal import DecimalException

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from margin.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from margin.engine.errors import EngineInputError
from margin.errors import ApplicationError
from margin.input_limits import NUMBER_OUT_OF_RANGE
from margin.services.idempotency import IdempotencyConflict

NON_FIELD = "non_field_errors"


class IdempotencyKeyMissing(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Send an Idempotency-Key header (1 to 100 printable characters)."


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was first used with another request body or endpoint; "
        "use a new key for a new request."
    )


def flatten_errors(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{"a.b[0].c": [messages]}`."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for name, value in detail.items():
            child = f"{path}.{name}" if path else str(name)
            flat.update(flatten_errors(value, child))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for n, item in enumerate(detail):
            flat.update(flatten_errors(item, f"{path}[{n}]"))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {path or NON_FIELD: [str(message) for message in messages]} if messages else {}


def _application_errors(error: ApplicationError) -> dict[str, list[str]]:
    extra = getattr(error, "extra", None) or {}
    return {
        str(name): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
        for name, messages in extra.items()
    }


def _classify(error: Exception) -> tuple[str, int, str, dict[str, list[str]] | None] | None:
    """(problem slug, status, detail, field errors) for a refusal we know, else None."""
    match error:
        case IdempotencyKeyMissing():
            return (
                "idempotency-key-missing",
                400,
                str(error.detail),
                {"Idempotency-Key": [str(error.detail)]},
            )
        case IdempotencyKeyReused():
            return "idempotency-key-reused", 422, str(error.detail), None
        case IdempotencyConflict():
            return "idempotency-key-reused", 422, str(error), None
        case EngineInputError():
            return "invalid-request", 400, str(error), {error.field or NON_FIELD: [error.message]}
        case DecimalException():
            return "invalid-request", 400, NUMBER_OUT_OF_RANGE, {NON_FIELD: [NUMBER_OUT_OF_RANGE]}
        case ApplicationError():
            return "refused", 400, str(error), _application_errors(error) or None
        case DjangoValidationError():
            errors = flatten_errors(
                error.message_dict if hasattr(error, "error_dict") else error.messages
            )
            return "invalid-request", 400, "The request is not valid.", errors
        case exceptions.ValidationError():
            return "invalid-request", 400, "The request is not valid.", flatten_errors(error.detail)
        case exceptions.ParseError():
            return "malformed-request", 400, str(error.detail), {NON_FIELD: [str(error.detail)]}
        case exceptions.NotAuthenticated() | exceptions.AuthenticationFailed():
            return "not-authenticated", 401, str(error.detail), None
        case exceptions.PermissionDenied():
            return "forbidden", 403, str(error.detail), None
        case PermissionDenied():
            return "forbidden", 403, "You do not have permission to perform this action.", None
        case exceptions.NotFound() | Http404():
            return "not-found", 404, "No such resource.", None
        case exceptions.MethodNotAllowed():
            return "method-not-allowed", 405, str(error.detail), None
        case exceptions.NotAcceptable():
            return "not-acceptable", 406, str(error.detail), None
        case exceptions.UnsupportedMediaType():
            return "unsupported-media-type", 415, str(error.detail), None
        case exceptions.Throttled():
            return "throttled", 429, str(error.detail), None
    return None


def problem_exception_handler(error: Exception, context: dict) -> Response | None:
    known = _classify(error)
    if known is None:
        return None
    slug, status_code, detail, errors = known
    response = Response(
        problem_body(slug=slug, status=status_code, detail=detail, errors=errors),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if isinstance(error, exceptions.Throttled) and error.wait is not None:
        response["Retry-After"] = str(int(error.wait) + 1)
    if status_code == 401:
        request = context["request"]
        header = context["view"].get_authenticate_header(request)
        if header:
            response["WWW-Authenticate"] = header
    return response

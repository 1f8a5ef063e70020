"""RFC 9457 problem details: the one shape every API error takes."""

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:exchange-risk:problem:"

# slug -> title; the slug is the stable part clients branch on (`type` ends with it).
PROBLEM_TITLES = {
    "invalid-request": "The request is not valid",
    "malformed-request": "The request body is not valid JSON",
    "refused": "The request was refused",
    "idempotency-key-missing": "An Idempotency-Key header is required",
    "idempotency-key-reused": "The Idempotency-Key was already used for another request",
    "not-authenticated": "Authentication is required",
    "forbidden": "Not allowed",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "not-acceptable": "Cannot answer in an accepted format",
    "unsupported-media-type": "Unsupported media type",
    "throttled": "Too many requests",
}


def problem_type(slug: str) -> str:
    return f"{TYPE_PREFIX}{slug}"


def problem_body(
    *, slug: str, status: int, detail: str, errors: dict[str, list[str]] | None = None
) -> dict:
    body = {
        "type": problem_type(slug),
        "title": PROBLEM_TITLES[slug],
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    *, slug: str, status: int, detail: str, errors: dict[str, list[str]] | None = None
) -> JsonResponse:
    """A problem answer outside DRF (the catch-all 404 of unknown API paths)."""
    return JsonResponse(
        problem_body(slug=slug, status=status, detail=detail, errors=errors),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )

"""Client-supplied idempotency keys: one booking per (user, key), whatever the concurrency."""

from margin.errors import ApplicationError


class IdempotencyConflict(ApplicationError):
    """The key was already used for a different request."""

"""Per-user API tokens: issued with the secret shown once, stored as a SHA-256, revocable.

A token reads `mrt_<prefix>_<secret>`; the whole string is hashed. The secret carries 256 bits
of randomness, so one unsalted SHA-256 looked up by index is as safe as a password hash here
and costs nothing per request.
"""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiToken, User

TOKEN_MARK = "mrt"
PREFIX_BYTES = 4
SECRET_BYTES = 32
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user` and its full text, which is never stored nor shown again."""
    prefix = f"{TOKEN_MARK}_{secrets.token_hex(PREFIX_BYTES)}"
    token = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    record = ApiToken.objects.create(
        user=user, name=name.strip() or "API token", prefix=prefix, secret_hash=_hash(token)
    )
    return record, token


@transaction.atomic
def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (idempotent); another user's token is not found."""
    record = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
    if record.revoked_at is None:
        record.revoked_at = timezone.now()
        record.save(update_fields=["revoked_at"])
    return record


def api_tokens_of(*, user: User):
    return ApiToken.objects.filter(user=user)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer mrt_…`. Answers 401 with `WWW-Authenticate: Bearer` when missing."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        record = (
            ApiToken.objects.select_related("user")
            .filter(secret_hash=_hash(header[1]), revoked_at__isnull=True)
            .first()
        )
        if record is None or not record.user.is_active:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        now = timezone.now()
        if record.last_used_at is None or now - record.last_used_at > LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        return record.user, record

    def authenticate_header(self, request) -> str:
        return self.keyword

"""Two-factor login for the risk desk (django-otp): a TOTP authenticator (RFC 6238, the 6-digit
code of any authenticator app) plus single-use recovery codes.

Risk officers, risk managers and admins must present a code after their password before any
desk page or session-authenticated API answers; traders are not asked. API tokens are a
separate credential and are not affected (`accounts.middleware`).
"""

import time
from base64 import b32decode, b32encode
from binascii import hexlify

from django.db import transaction
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.roles import USE_DESK

AUTHENTICATOR_NAME = "authenticator"
RECOVERY_NAME = "recovery codes"
RECOVERY_CODE_COUNT = 10


def needs_second_factor(user) -> bool:
    """Desk roles (and staff, who reach the admin) log in with a second factor."""
    return bool(user.is_authenticated and (user.is_staff or user.has_perm(USE_DESK)))


def is_second_factor_verified(user) -> bool:
    return bool(getattr(user, "is_verified", None) and user.is_verified())


def authenticator_of(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def secret_text(device: TOTPDevice) -> str:
    """The key as an authenticator app takes it (base32, no padding)."""
    return b32encode(device.bin_key).decode().rstrip("=")


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The device's code at `at` (now by default), as the user's authenticator shows it."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    return f"{totp.token():0{device.digits}d}"


@transaction.atomic
def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """A fresh unconfirmed authenticator for `user` (a new secret each time it is shown, so a
    secret seen once and abandoned is worthless)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


@transaction.atomic
def totp_enrolment_confirm(*, request, code: str) -> list[str] | None:
    """Confirm the pending authenticator with its current code: it replaces any earlier one,
    the session counts as verified and fresh recovery codes are returned (shown once).
    None if the code is wrong."""
    user = request.user
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("-pk")
        .first()
    )
    if device is None or not device.verify_token(code):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    otp_login(request, device)
    return recovery_codes_issue(user=user)


@transaction.atomic
def recovery_codes_issue(*, user: User) -> list[str]:
    """Ten new single-use recovery codes; any earlier ones stop working."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def second_factor_verify(*, request, code: str) -> bool:
    """Check a code (authenticator or recovery code; a recovery code is used up) and mark the
    session verified. Failures are throttled per device by django-otp."""
    device = match_token(request.user, code.strip().replace(" ", ""))
    if device is None:
        return False
    otp_login(request, device)
    return True


@transaction.atomic
def totp_device_ensure(*, user: User, secret: str) -> TOTPDevice:
    """Give `user` a confirmed authenticator with this base32 `secret` (demo users, whose
    secrets are published in the README; never for a real user)."""
    padded = secret.upper() + "=" * (-len(secret) % 8)
    key = hexlify(b32decode(padded)).decode()
    device = authenticator_of(user)
    if device is None:
        return TOTPDevice.objects.create(
            user=user, name=AUTHENTICATOR_NAME, key=key, confirmed=True
        )
    if device.key != key:
        device.key = key
        device.save(update_fields=["key"])
    return device

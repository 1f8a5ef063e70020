"""Desk users log in in tests as a person does: the password, then their authenticator's code
(accounts.second_factor). Each desk user gets an authenticator with one known test secret."""

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.second_factor import needs_second_factor, totp_code, totp_device_ensure

TEST_TOTP_SECRET = "TESTDESKTOTPSECRETKEYAAAAAAAAAAA"


def authenticator_for(user) -> TOTPDevice:
    return totp_device_ensure(user=user, secret=TEST_TOTP_SECRET)


def fresh_code(user) -> str:
    """The current code, usable now: django-otp refuses a second code of the same 30 s step
    (replay protection), and a test may log one user in several times within a step."""
    device = authenticator_for(user)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    device.refresh_from_db()
    return totp_code(device)


class SecondFactorClient(Client):
    """force_login stands for a whole login: for a desk role, password and second factor."""

    def force_login(self, user, backend=None, *, second_factor: bool = True):
        super().force_login(user, backend)
        if second_factor and needs_second_factor(user):
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = authenticator_for(user).persistent_id
            session.save()


def submit_login(page, user, password: str) -> None:
    """Fill the login form on `page` (already open) and, for a desk role, the code step."""
    desk = needs_second_factor(user)
    if desk:
        authenticator_for(user)
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    # Both forms are plain POSTs: wait for the answer's page, so the caller never acts on a
    # page that is still navigating (a reload then fails "Not attached to an active page").
    with page.expect_navigation():
        page.click("button[type=submit]")
    if desk:
        # A wrong password stays on the login form; the right one asks for the code.
        page.wait_for_selector("#id_code, .form-error, #lockout")
        if page.locator("#id_code").count():
            page.fill("#id_code", fresh_code(user))
            with page.expect_navigation():
                page.click("#second-factor button[type=submit]")

"""Two-factor login for the desk roles (accounts.second_factor, accounts.middleware)."""

import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.authentication import api_token_create
from accounts.models import User
from accounts.roles import ADMIN, RISK_MANAGER, RISK_OFFICER, TRADER
from accounts.second_factor import authenticator_of, recovery_codes_issue, totp_code
from margin.management.commands.seed_demo import DEMO_TOTP_SECRETS
from margin.models import Case
from tests.desk.conftest import DESK_PAGES
from tests.second_factor import authenticator_for, fresh_code

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
DESK_ROLES = [RISK_OFFICER, RISK_MANAGER, ADMIN]


def password_only(user) -> Client:
    """A session past the password step and no further."""
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", DESK_ROLES)
def test_a_desk_login_without_the_second_factor_reaches_no_desk_page_nor_api(make_user, role, book):
    # given: the password was right, no code given yet
    user = make_user(role)
    authenticator_for(user)
    client = password_only(user)
    account = book["margin_call"]
    # when / then: every desk page sends to the code step
    for name in (*DESK_PAGES, "home", "password_change", "api_tokens"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response.url.startswith(reverse("second_factor")), name
    # the desk API through the session is refused, and a write changes nothing
    assert client.get(reverse("api:desk-queue")).status_code == 403
    refused = client.post(
        reverse("api:desk-case-open", args=[account.pk]),
        {"summary": "no code"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("forbidden")
    assert not Case.objects.exists()
    # an htmx poll is told to navigate to the code step, not given a page to swap in
    polled = client.get(reverse("desk:landing"), HTTP_HX_REQUEST="true")
    assert polled.status_code == 403
    assert polled["HX-Redirect"].startswith(reverse("second_factor"))


def test_a_trader_is_not_asked_for_a_second_factor(make_user):
    client = password_only(make_user(TRADER))
    assert client.get(reverse("trader:accounts")).status_code == 200


def test_an_api_token_of_a_desk_member_works_without_a_second_factor(make_user, book):
    # given: API tokens are their own credential (and a session past the password alone)
    officer = make_user(RISK_OFFICER)
    _, token = api_token_create(user=officer, name="desk bot")
    client = password_only(officer)
    # when
    response = client.get(reverse("api:desk-queue"), HTTP_AUTHORIZATION=f"Bearer {token}")
    # then
    assert response.status_code == 200


def test_password_then_code_a_wrong_code_is_refused_the_right_one_opens_the_desk(
    make_user, password, book
):
    # given
    officer = make_user(RISK_OFFICER)
    authenticator_for(officer)
    client = Client()
    # when: the password
    after_password = client.post(
        reverse("login"), {"username": officer.username, "password": password}
    )
    asked = client.get(after_password.url, follow=True)
    # then: the code step
    assert asked.redirect_chain[-1][0].startswith(reverse("second_factor"))
    assert b'name="code"' in asked.content
    # a wrong code is refused and the desk stays shut
    wrong = client.post(reverse("second_factor"), {"code": "000000", "next": "/desk/"})
    assert wrong.status_code == 400
    assert client.get(reverse("desk:landing")).status_code == 302
    # right after a wrong code django-otp holds the authenticator for a second, and says so
    current = totp_code(authenticator_of(officer))
    held = client.post(reverse("second_factor"), {"code": current, "next": "/desk/"})
    assert held.status_code == 400 and b"wait" in held.content
    # the right code once the hold is over opens the desk
    TOTPDevice.objects.filter(user=officer).update(throttling_failure_count=0)
    right = client.post(reverse("second_factor"), {"code": fresh_code(officer), "next": "/desk/"})
    assert right.status_code == 302 and right.url == "/desk/"
    assert client.get(reverse("desk:landing")).status_code == 200


def test_a_code_is_used_once(make_user):
    # given: a code accepted in one session
    officer = make_user(RISK_OFFICER)
    code = fresh_code(officer)
    first = password_only(officer)
    assert first.post(reverse("second_factor"), {"code": code}).status_code == 302
    # when: the same code again (replayed) in another session
    second = password_only(officer)
    replayed = second.post(reverse("second_factor"), {"code": code})
    # then
    assert replayed.status_code == 400


def test_a_recovery_code_logs_in_once(make_user):
    # given
    manager = make_user(RISK_MANAGER)
    authenticator_for(manager)
    codes = recovery_codes_issue(user=manager)
    # when
    first = password_only(manager)
    used = first.post(reverse("second_factor"), {"code": codes[0]})
    again = password_only(manager).post(reverse("second_factor"), {"code": codes[0]})
    # then
    assert len(set(codes)) == 10
    assert used.status_code == 302
    assert first.get(reverse("desk:landing")).status_code == 200
    assert again.status_code == 400


def test_enrolment_shows_the_secret_confirms_with_a_code_and_gives_recovery_codes(make_user):
    # given: a new desk member with no authenticator
    officer = make_user(RISK_OFFICER)
    client = password_only(officer)
    # when: any desk page
    sent = client.get(reverse("desk:landing"))
    # then: to the enrolment, which shows a secret and its QR code
    assert sent.url.startswith(reverse("second_factor_enrol"))
    page = client.get(sent.url)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.content.decode()).group(1)
    assert b"data:image/svg+xml" in page.content
    pending = TOTPDevice.objects.get(user=officer, confirmed=False)
    assert totp_code(pending) and len(secret) == 32
    # a wrong code does not confirm it
    wrong = client.post(reverse("second_factor_enrol"), {"code": "123456"})
    assert wrong.status_code == 400 and authenticator_of(officer) is None
    TOTPDevice.objects.filter(pk=pending.pk).update(throttling_failure_count=0)
    # the code of the shown secret does, shows ten recovery codes once, and opens the desk
    pending.refresh_from_db()
    confirmed = client.post(reverse("second_factor_enrol"), {"code": totp_code(pending)})
    assert confirmed.status_code == 200
    assert len(re.findall(r"<li><code>\w+</code></li>", confirmed.content.decode())) == 10
    assert authenticator_of(officer).pk == pending.pk
    assert client.get(reverse("desk:landing")).status_code == 200


def test_a_desk_member_with_an_authenticator_cannot_replace_it_without_a_code(make_user):
    officer = make_user(RISK_OFFICER)
    authenticator_for(officer)
    response = password_only(officer).get(reverse("second_factor_enrol"))
    assert response.url.startswith(reverse("second_factor"))


def test_demo_desk_users_are_enrolled_with_the_secrets_the_readme_publishes(capsys):
    # given
    call_command("seed_demo")
    readme = README.read_text()
    for username, secret in DEMO_TOTP_SECRETS.items():
        # then: the README's demo table lists each secret
        assert re.search(rf"\| {username} \|.*`{secret}`", readme), username
    # and `totp_code` prints the code an authenticator with that secret shows
    capsys.readouterr()
    call_command("totp_code", "officer")
    printed = capsys.readouterr().out.strip()
    device = authenticator_of(User.objects.get(username="officer"))
    assert printed in {totp_code(device, at=time.time() + d) for d in (-30, 0)}
    assert re.fullmatch(r"\d{6}", printed)


def test_a_verified_desk_member_renews_the_recovery_codes_the_old_ones_stop_working(
    client, make_user
):
    # given
    manager = make_user(RISK_MANAGER)
    old = recovery_codes_issue(user=manager)
    client.force_login(manager)
    # when
    assert b"New recovery codes" in client.get(reverse("api_tokens")).content
    renewed = client.post(reverse("recovery_codes_renew"))
    # then
    new = re.findall(r"<li><code>(\w+)</code></li>", renewed.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    replayed = password_only(manager).post(reverse("second_factor"), {"code": old[0]})
    assert replayed.status_code == 400


def test_a_half_logged_in_desk_member_still_reads_public_pages(make_user, market):
    client = password_only(make_user(RISK_OFFICER))
    assert client.get(reverse("disclosure")).status_code == 200
    assert client.get(reverse("api:parameters")).status_code == 200

"""The desk's two-factor login in a real browser (accounts.second_factor)."""

import pytest

from accounts.roles import RISK_OFFICER, TRADER
from tests.second_factor import authenticator_for, fresh_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_officer_is_asked_for_the_code_a_wrong_one_is_refused_the_right_one_opens_the_desk(
    make_user, page, live_server, password, settings
):
    # given: an officer with an authenticator; no hold after a wrong code (the hold has its
    # own test), so the right code can follow at once
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    officer = make_user(RISK_OFFICER)
    authenticator_for(officer)
    # when: the password
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", officer.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    # then: asked for the code, not on the desk
    page.wait_for_url("**/login/verify/**")
    assert page.locator("h1").inner_text() == "Enter your code"
    # a wrong code is refused
    page.fill("#id_code", "000000")
    page.click("#second-factor button[type=submit]")
    assert "not valid" in page.locator(".field-error").inner_text()
    page.goto(f"{live_server.url}/desk/")
    page.wait_for_url("**/login/verify/**")
    # the right code opens the desk
    page.fill("#id_code", fresh_code(officer))
    page.click("#second-factor button[type=submit]")
    page.wait_for_url("**/desk/")
    assert page.get_by_role("link", name="Risk desk").is_visible()


def test_a_trader_goes_straight_through(make_user, page, live_server, password):
    trader = make_user(TRADER)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", trader.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/")
    assert page.locator("#id_code").count() == 0

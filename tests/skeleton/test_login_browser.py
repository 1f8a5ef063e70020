import pytest

from accounts.roles import RISK_OFFICER, TRADER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_trader_logs_in_and_lands_on_their_accounts(make_user, login):
    page = login(make_user(TRADER))
    page.wait_for_url("**/accounts/")
    assert page.locator("h1").inner_text() == "My margin accounts"
    assert page.locator("nav.mainnav").inner_text().strip() == "My accounts"


def test_wrong_password_shows_a_message(make_user, login):
    page = login(make_user(TRADER), secret="not-the-password")
    assert "correct username and password" in page.locator(".form-error").inner_text()


def test_repeated_failures_lock_the_login_out(make_user, login, settings, password):
    user = make_user(TRADER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page = login(user, secret="wrong")
    assert "Too many failed logins" in page.content()
    # the right password no longer opens it
    page = login(user)
    assert "Too many failed logins" in page.content()


def test_risk_officer_sees_the_desk_entry_a_trader_does_not(make_user, login, browser, live_server):
    page = login(make_user(RISK_OFFICER))
    page.wait_for_url("**/desk/")
    assert page.get_by_role("link", name="Risk desk").is_visible()
    assert page.get_by_role("link", name="My accounts").count() == 0


def test_htmx_loads_under_the_csp_without_violations(make_user, login):
    violations: list[str] = []
    user = make_user(TRADER)
    page = login(user)
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.reload()
    assert page.evaluate("typeof window.htmx") == "object"
    assert violations == []

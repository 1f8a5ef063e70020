import re

import pytest
from django.urls import reverse

from accounts.roles import RISK_MANAGER, RISK_OFFICER, TRADER


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_the_login_form(client):
    # when
    response = client.get("/", follow=True)
    # then
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert b'name="password"' in response.content


@pytest.mark.parametrize(
    ("role", "landing"),
    [(TRADER, "trader:accounts"), (RISK_OFFICER, "desk:landing"), (RISK_MANAGER, "desk:landing")],
)
def test_each_role_lands_on_its_own_page(client, make_user, role, landing):
    # given
    client.force_login(make_user(role))
    # when
    response = client.get("/")
    # then
    assert response.status_code == 302
    assert response.url == reverse(landing)


def test_trader_without_collateral_sees_an_honest_empty_state(client, make_user):
    client.force_login(make_user(TRADER))
    response = client.get(reverse("trader:accounts"))
    assert response.status_code == 200
    assert b"No collateral yet" in response.content


def test_trader_gets_403_on_the_desk(client, make_user):
    client.force_login(make_user(TRADER))
    assert client.get(reverse("desk:landing")).status_code == 403


def test_navigation_shows_each_role_what_it_may_use(client, make_user):
    client.force_login(make_user(TRADER))
    trader_page = client.get(reverse("trader:accounts")).content.decode()
    client.force_login(make_user(RISK_OFFICER))
    officer_page = client.get(reverse("desk:landing")).content.decode()
    assert "Risk desk" not in trader_page and "My accounts" in trader_page
    assert "Risk desk" in officer_page and "My accounts" not in officer_page


def test_pages_carry_a_nonce_csp_and_htmx_uses_the_nonce(client, make_user):
    client.force_login(make_user(TRADER))
    response = client.get(reverse("trader:accounts"))
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "script-src 'self' 'nonce-" in policy
    assert f'nonce="{nonce}"' in response.content.decode()
    assert "htmx" in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(client, make_user):
    client.force_login(make_user(TRADER))
    client.post(reverse("logout"))
    assert client.get(reverse("trader:accounts")).status_code == 302


def test_password_change_works_in_our_template(client, make_user, password):
    user = make_user(TRADER)
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": password,
            "new_password1": "a-New-Pass-4321",
            "new_password2": "a-New-Pass-4321",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-New-Pass-4321")

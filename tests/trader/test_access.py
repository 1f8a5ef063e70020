"""A trader reaches only their own accounts: anyone else's answers 404 on every URL."""

import pytest
from django.urls import reverse

from accounts.roles import RISK_OFFICER
from margin.models import Journal

ACCOUNT_PAGES = [
    ("trader:account", {}),
    ("trader:live", {}),
    ("trader:explain", {"figure": "account.margin_ratio"}),
    ("trader:whatif", {"shock": "-10"}),
    ("trader:charts", {}),
    ("trader:history", {}),
]
OPERATIONS = ["deposit", "withdraw", "trade"]
POSITION_OPERATIONS = ["leverage", "isolated-margin", "margin-mode"]


@pytest.mark.parametrize(("name", "query"), ACCOUNT_PAGES)
def test_own_account_pages_answer(trader_client, account, name, query):
    # when
    response = trader_client.get(reverse(name, args=[account.pk]), query)
    # then
    assert response.status_code == 200


@pytest.mark.parametrize(("name", "query"), ACCOUNT_PAGES)
def test_another_traders_account_pages_are_404(trader_client, account, other_account, name, query):
    # when
    response = trader_client.get(reverse(name, args=[other_account.pk]), query)
    # then
    assert response.status_code == 404


@pytest.mark.parametrize("operation", OPERATIONS)
def test_another_traders_account_takes_no_write(trader_client, account, other_account, operation):
    # given
    journals = Journal.objects.count()
    url = reverse("trader:operation", args=[other_account.pk, operation])
    # when
    form = trader_client.get(url)
    booked = trader_client.post(url, {"asset": "USDT", "amount": "1", "instrument": "ETHUSDT"})
    # then
    assert (form.status_code, booked.status_code) == (404, 404)
    assert Journal.objects.count() == journals


@pytest.mark.parametrize("operation", POSITION_OPERATIONS)
def test_another_traders_position_is_404(trader_client, account, other_account, operation):
    # given
    url = reverse("trader:position_operation", args=[other_account.pk, "ETHUSDT", operation])
    # when
    response = trader_client.get(url)
    # then
    assert response.status_code == 404


def test_a_position_the_account_does_not_hold_is_404(trader_client, account):
    # when
    response = trader_client.get(
        reverse("trader:position_operation", args=[account.pk, "SOLUSDT", "margin-mode"])
    )
    # then
    assert response.status_code == 404


def test_an_unknown_operation_is_404(trader_client, account):
    # when
    response = trader_client.get(reverse("trader:operation", args=[account.pk, "launder"]))
    # then
    assert response.status_code == 404


def test_an_unknown_figure_is_404(trader_client, account):
    # when
    response = trader_client.get(
        reverse("trader:explain", args=[account.pk]), {"figure": "account.nonsense"}
    )
    # then
    assert response.status_code == 404


def test_anonymous_is_sent_to_log_in(client, account):
    # when
    response = client.get(reverse("trader:account", args=[account.pk]))
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_desk_is_no_trader(client, make_user, account):
    # given
    client.force_login(make_user(RISK_OFFICER))
    # when
    response = client.get(reverse("trader:account", args=[account.pk]))
    # then
    assert response.status_code == 403


def test_the_list_shows_only_the_traders_own_accounts(trader_client, account, other_account):
    # when
    response = trader_client.get(reverse("trader:accounts"))
    # then
    content = response.content.decode()
    assert reverse("trader:account", args=[account.pk]) in content
    assert reverse("trader:account", args=[other_account.pk]) not in content


def test_another_traders_account_is_a_friendly_404_without_debug(
    trader_client, account, other_account, settings
):
    # given: DEBUG off, as under `make run` (DEBUG on would list every URL pattern)
    settings.DEBUG = False
    # when
    response = trader_client.get(reverse("trader:account", args=[other_account.pk]))
    # then: our page, in the site's layout, with a way back; no URL patterns
    content = response.content.decode()
    assert response.status_code == 404
    assert 'data-testid="not-found"' in content and "Back to your start page" in content
    assert "URLconf" not in content and "trader:" not in content


def test_a_desk_page_is_a_friendly_403_for_a_trader(trader_client, settings):
    settings.DEBUG = False
    response = trader_client.get(reverse("desk:landing"))
    assert response.status_code == 403
    assert 'data-testid="forbidden"' in response.content.decode()


def test_the_server_error_page_renders_without_a_request():
    from django.template.loader import render_to_string

    page = render_to_string("500.html")
    assert "Something went wrong" in page and "Nothing was booked half-way" in page

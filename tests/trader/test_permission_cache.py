"""A user's permissions are read once and cached (accounts.permissions) under a version that any
change of their roles moves: the next request after a change answers by the new roles."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import RISK_OFFICER, TRADER, USE_DESK

pytestmark = pytest.mark.django_db


def permission(code: str) -> Permission:
    app, codename = code.split(".", 1)
    return Permission.objects.get(content_type__app_label=app, codename=codename)


def permission_reads(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return sum('"auth_permission"' in query["sql"] for query in captured)


def test_the_second_request_reads_no_permissions(trader_client):
    # given
    url = reverse("trader:accounts")
    # when
    first, second = permission_reads(trader_client, url), permission_reads(trader_client, url)
    # then: Django's two queries (own permissions, the groups'), then none
    assert (first, second) == (2, 0)


def leave_the_role(trader):
    trader.groups.remove(Group.objects.get(name=TRADER))


def role_loses_its_members(trader):
    Group.objects.get(name=TRADER).user_set.clear()


def role_loses_the_permission(trader):
    Group.objects.get(name=TRADER).permissions.clear()


def role_deleted(trader):
    Group.objects.get(name=TRADER).delete()


@pytest.mark.parametrize(
    "change", [leave_the_role, role_loses_its_members, role_loses_the_permission, role_deleted]
)
def test_losing_the_trader_role_shows_on_the_next_request(trader_client, trader, change):
    # given: the permissions are cached
    url = reverse("trader:accounts")
    assert trader_client.get(url).status_code == 200
    # when
    change(trader)
    # then
    assert trader_client.get(url).status_code == 403


@pytest.mark.parametrize(
    "grant",
    [
        lambda trader: trader.groups.add(Group.objects.get(name=RISK_OFFICER)),
        lambda trader: Group.objects.get(name=TRADER).permissions.add(permission(USE_DESK)),
        lambda trader: permission(USE_DESK).user_set.add(trader),
    ],
    ids=["joins a desk role", "the role gains the desk", "granted the desk alone"],
)
def test_a_desk_permission_asks_for_the_second_factor_on_the_next_request(
    trader_client, trader, grant
):
    # given: a trader, not asked for a second factor, permissions cached
    url = reverse("trader:accounts")
    assert trader_client.get(url).status_code == 200
    # when
    grant(trader)
    response = trader_client.get(url)
    # then: the session has no second factor, so the desk's check holds it at the code step
    assert response.status_code == 302
    assert response.url.startswith(reverse("second_factor_enrol"))

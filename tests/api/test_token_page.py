import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_token_made_on_the_page_is_shown_once_and_works(client, trader):
    # given
    client.force_login(trader)
    # when
    created = client.post(reverse("api_tokens"), {"name": "hedger"})
    listed = client.get(reverse("api_tokens"))
    # then
    secret = created.context["created"]["secret"]
    assert secret in created.content.decode()
    assert secret not in listed.content.decode()
    assert ApiToken.objects.get(user=trader).prefix in listed.content.decode()
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    prefix = bot.get("/api/v1/me/").json()["token_prefix"]
    assert secret.startswith(f"{prefix}_")


def test_revoking_on_the_page_stops_the_token(client, trader):
    # given
    client.force_login(trader)
    secret = client.post(reverse("api_tokens"), {"name": "old"}).context["created"]["secret"]
    record = ApiToken.objects.get(user=trader)
    # when
    client.post(reverse("api_token_revoke", args=[record.pk]))
    # then
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/me/").status_code == 401
    assert "revoked" in client.get(reverse("api_tokens")).content.decode()


def test_another_users_token_cannot_be_revoked_from_the_page(client, trader, other_trader):
    # given
    theirs = client_for(other_trader)
    record = ApiToken.objects.get(user=other_trader)
    client.force_login(trader)
    # when
    response = client.post(reverse("api_token_revoke", args=[record.pk]))
    # then
    assert response.status_code == 404
    assert theirs.get("/api/v1/me/").status_code == 200

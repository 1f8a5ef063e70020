import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.authentication import api_token_create, api_token_revoke
from accounts.models import ApiToken
from margin.api.problems import PROBLEM_CONTENT_TYPE, problem_type

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_token_is_stored_only_as_a_hash_and_authenticates_its_user(trader):
    # given
    record, token = api_token_create(user=trader, name="hedger")
    # when
    response = bearer(token).get(reverse("api:me"))
    # then
    assert response.status_code == 200
    assert response.json()["username"] == trader.username
    assert response.json()["authenticated_by"] == "token"
    assert response.json()["token_prefix"] == record.prefix
    assert token.startswith(record.prefix)
    stored = ApiToken.objects.get(pk=record.pk)
    assert token not in {stored.secret_hash, stored.prefix, stored.name}
    assert stored.last_used_at is not None


def test_a_revoked_token_answers_401_as_a_problem(trader):
    # given
    record, token = api_token_create(user=trader, name="old bot")
    api_token_revoke(user=trader, token_id=record.pk)
    # when
    response = bearer(token).get(reverse("api:me"))
    # then
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["type"] == problem_type("not-authenticated")


def test_an_unknown_token_answers_401(trader):
    api_token_create(user=trader, name="real")
    response = bearer("mrt_00000000_not-a-real-secret").get(reverse("api:me"))
    assert response.status_code == 401


def test_anonymous_calls_answer_401_with_the_bearer_challenge(anonymous):
    response = anonymous.get(reverse("api:me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "type": problem_type("not-authenticated"),
        "title": "Authentication is required",
        "status": 401,
        "detail": "Authentication credentials were not provided.",
    }


def test_a_user_cannot_revoke_another_users_token(trader, other_trader):
    record, _ = api_token_create(user=trader, name="mine")
    with pytest.raises(ApiToken.DoesNotExist):
        api_token_revoke(user=other_trader, token_id=record.pk)
    assert ApiToken.objects.get(pk=record.pk).revoked_at is None


def test_the_browser_session_authenticates_and_post_needs_csrf(trader):
    # given: a logged-in browser that enforces CSRF like a real one
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(trader)
    # when
    me = client.get(reverse("api:me"))
    quote = client.post(reverse("api:quote"), {"account": {}}, format="json")
    # then
    assert me.status_code == 200 and me.json()["authenticated_by"] == "session"
    assert quote.status_code == 403
    assert quote.json()["type"] == problem_type("forbidden")

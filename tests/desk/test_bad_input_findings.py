"""The seven bad inputs of issue 19's adversarial run, exactly as reported (each was a 500 or
an accepted value the database could not store), now each a 4xx with nothing written."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.authentication import api_token_create
from margin.models import CascadeRun, CaseNote, Entry, Proposal
from margin.services.desk import case_open

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    _, token = api_token_create(user=user, name="findings")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_1_a_json_body_nested_100000_deep_is_a_400(book):
    account = book["healthy"]
    entries = Entry.objects.count()
    response = api(account.owner).post(
        reverse("api:deposits", args=[account.pk]),
        "[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="deep",
    )
    assert response.status_code == 400
    assert "deeper than 32" in response.json()["detail"]
    assert Entry.objects.count() == entries


def test_2_a_nul_in_a_position_path_is_a_404(book):
    account = book["healthy"]
    response = api(account.owner).get(f"/api/v1/accounts/{account.pk}/positions/%00/")
    assert response.status_code == 404


def test_3_a_history_until_9999_12_31_is_a_400(client, book):
    account = book["healthy"]
    client.force_login(account.owner)
    response = client.get(f"/accounts/{account.pk}/history/?until=9999-12-31")
    assert response.status_code == 400
    assert b"2099-12-31" in response.content  # the error names the limit


def test_4_a_username_over_255_characters_is_a_400_before_login(client):
    from axes.models import AccessAttempt

    response = client.post(reverse("login"), {"username": "x" * 300, "password": "y"})
    assert response.status_code == 400
    assert b"at most 150 characters" in response.content
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"stress_k_sigma": "123456789"},  # a ratio column keeps 8 whole digits
        {"taker_fee_rate": "0.0000000000001"},  # and 12 places
        {"price_guard_max_age_s": "2147483648"},  # an integer column
    ],
)
def test_5_parameter_values_the_database_cannot_store_are_refused_when_proposed(
    officer, book, fields
):
    response = api(officer).post(
        reverse("api:desk-parameter-change"),
        {"reason": "too big", "fields": fields},
        format="json",
        HTTP_IDEMPOTENCY_KEY="p",
    )
    assert response.status_code == 400
    assert f"fields.{next(iter(fields))}" in response.json()["errors"]
    assert not Proposal.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"bracket_instrument": "BTCUSDT", "brackets": "0 123456789 125"},
        {"price_guard_max_age_s": "9999999999"},
        {"credit_tier": "standard", "mm_scale": "1e400"},
    ],
)
def test_5_the_parameter_page_refuses_values_the_columns_cannot_store(
    client, officer, book, change
):
    client.force_login(officer)
    response = client.post(
        reverse("desk:parameters_propose"), {"reason": "too big", "ttl_hours": "24", **change}
    )
    assert response.status_code in (302, 400)
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("depth", ["1e400", "Infinity", "NaN", "1" + "0" * 30])
def test_6_the_cascade_form_refuses_a_depth_that_is_not_a_finite_storable_number(
    client, officer, book, depth
):
    client.force_login(officer)
    response = client.post(
        reverse("desk:cascade_start"),
        {"scenario": "uniform", "move": "-0.2", "depth_usd": depth, "max_rounds": "3"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Market depth" in response.content.decode()  # the refusal names the field
    assert not CascadeRun.objects.exists()


def test_7_one_megabyte_of_free_text_is_refused_on_desk_writes(client, officer, book):
    case = case_open(account=book["margin_call"], actor=officer, summary="s")
    client.force_login(officer)
    page = client.post(reverse("desk:case_note", args=[case.pk]), {"body": "x" * 1_000_000})
    via_api = api(officer).post(
        reverse("api:desk-case-note", args=[case.pk]),
        {"body": "x" * 1_000_000},
        format="json",
        HTTP_IDEMPOTENCY_KEY="n",
    )
    assert page.status_code == 302  # back to the case with the error as a message
    assert via_api.status_code == 400
    assert "2000" in str(via_api.json()["errors"]["body"])
    assert not CaseNote.objects.exists()

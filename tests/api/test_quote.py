from decimal import Decimal

import pytest
from django.urls import reverse

from margin.api.problems import PROBLEM_CONTENT_TYPE, problem_type
from margin.models import IdempotencyRecord
from tests.engine.support import linked_cases, quote_cases

pytestmark = pytest.mark.django_db

# Every published case, those of prices of one underlying moving together too (a position names
# its `underlying`).
CASES = {**quote_cases(), **linked_cases()}


def one_position(**changes) -> dict:
    position = {
        "id": "BTCUSDT",
        "side": "long",
        "quantity": "0.8",
        "entry_price": "61000",
        "mark_price": "64000",
        "leverage": "10",
        "brackets": [
            {"floor": "0", "mmr": "0.004", "max_leverage": "125"},
            {"floor": "50000", "mmr": "0.005", "max_leverage": "100"},
        ],
    } | changes
    return {
        "account": {
            "collateral": [{"asset": "USDT", "quantity": "10000", "price": "1"}],
            "positions": [position],
        }
    }


def close_enough(actual: str | None, expected: str | None) -> bool:
    if expected is None or actual is None:
        return actual == expected
    return abs(Decimal(actual) - Decimal(expected)) <= Decimal("1e-9") * max(
        abs(Decimal(expected)), Decimal("0.01")
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_quote_answers_each_published_vector(trader_api, name):
    # given
    case = CASES[name]
    # when
    response = trader_api.post(reverse("api:quote"), case["request"], format="json")
    # then
    assert response.status_code == 200, response.content
    answer = response.json()
    for figure, expected in case["expect"].get("account", {}).items():
        assert close_enough(answer["account"][figure], expected), figure
    rows = {row["id"]: row for row in answer["positions"]}
    for expected_row in case["expect"].get("positions", []):
        row = rows[expected_row["id"]]
        for figure, expected in expected_row.items():
            if figure in ("id", "bracket"):
                assert str(row[figure]) == str(expected)
            else:
                assert close_enough(row[figure], expected), (expected_row["id"], figure)


def test_explain_true_adds_the_steps_of_every_figure(trader_api):
    # when
    plain = trader_api.post(reverse("api:quote"), one_position(), format="json").json()
    explained = trader_api.post(
        reverse("api:quote") + "?explain=true", one_position(), format="json"
    ).json()
    # then
    assert "explain" not in plain
    steps = explained["explain"]["positions.BTCUSDT.maintenance_margin"]
    assert steps[-1]["result"] == explained["positions"][0]["maintenance_margin"]
    assert steps[-1]["text"].startswith("MM = notional 51,200.00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (one_position(quantity="-1"), "account.positions[0].quantity"),
        (one_position(quantity=1), "account.positions[0].quantity"),
        (one_position(side="up"), "account.positions[0].side"),
        (one_position(leverage="500"), "account.positions[0].leverage"),
        (one_position(margin_mod="cross"), "account.positions[0].margin_mod"),
        ({"acount": {}}, "request.acount"),
        ([], "request"),
    ],
)
def test_bad_quote_input_answers_400_naming_the_field(trader_api, body, field):
    # when
    response = trader_api.post(reverse("api:quote"), body, format="json")
    # then
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    problem = response.json()
    assert problem["type"] == problem_type("invalid-request")
    assert list(problem["errors"]) == [field]
    assert problem["errors"][field][0]


@pytest.mark.parametrize("number", ["1e999999999", "1e-999999999"])
def test_numbers_beyond_the_engines_range_answer_400_not_500(trader_api, number):
    response = trader_api.post(reverse("api:quote"), one_position(quantity=number), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]


def test_malformed_json_answers_a_problem_400(trader_api):
    response = trader_api.post(
        reverse("api:quote"), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["type"] == problem_type("malformed-request")


def test_an_invalid_explain_flag_answers_400_on_that_parameter(trader_api):
    response = trader_api.post(
        reverse("api:quote") + "?explain=maybe", one_position(), format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["explain"]


def test_a_quote_with_a_key_is_replayed_byte_for_byte(trader_api):
    # given
    first = trader_api.post(
        reverse("api:quote"), one_position(), format="json", HTTP_IDEMPOTENCY_KEY="q-1"
    )
    # when
    again = trader_api.post(
        reverse("api:quote"), one_position(), format="json", HTTP_IDEMPOTENCY_KEY="q-1"
    )
    other_body = trader_api.post(
        reverse("api:quote"),
        one_position(quantity="0.9"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="q-1",
    )
    # then
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422
    assert other_body.json()["type"] == problem_type("idempotency-key-reused")
    assert IdempotencyRecord.objects.filter(key="api:q-1").count() == 1

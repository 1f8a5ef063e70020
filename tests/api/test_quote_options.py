"""Options through the API's stateless quote: the same answer as the command line, a refused
isolated option as a 400 naming the field, and the OpenAPI schema describing option rows."""

from decimal import Decimal

import pytest
from django.urls import reverse

from margin.engine.options import black76
from tests.engine.support import OPTIONS_MD_ROW, option_request

pytestmark = pytest.mark.django_db


def test_an_option_book_is_quoted_with_its_grid(trader_api):
    response = trader_api.post(
        reverse("api:quote") + "?explain=true", option_request(OPTIONS_MD_ROW), format="json"
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    row = answer["positions"][0]
    expected = black76("call", Decimal(95000), Decimal(100000), Decimal("0.55"), Decimal(30))
    assert Decimal(row["mark_price"]) == expected.value
    assert Decimal(answer["account"]["portfolio_maintenance_margin"]) == Decimal(
        answer["account"]["maintenance_margin"]
    )
    assert Decimal(answer["account"]["scan_risk"]["BTC"]) > 0
    assert "positions.BTC-30D-100000-C.mark_price" in answer["explain"]


def test_an_isolated_option_answers_400_with_the_reason(trader_api):
    response = trader_api.post(
        reverse("api:quote"),
        option_request(OPTIONS_MD_ROW | {"margin_mode": "isolated"}),
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["account.positions[0].margin_mode"]
    assert "cannot be isolated" in errors["account.positions[0].margin_mode"][0]


def test_the_schema_describes_option_rows(trader_api):
    response = trader_api.get(reverse("api:schema") + "?format=json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "implied_vol" in text and "portfolio_maintenance_margin" in text

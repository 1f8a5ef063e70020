"""Every desk page renders for a risk officer with a bounded number of queries, and the heat
maps add up to the book."""

from decimal import Decimal

import pytest
from django.urls import reverse

from margin.selectors.desk import RiskCell
from margin.services.desk import case_open
from margin.services.proposals import forced_reduction_propose
from tests.desk.conftest import DESK_PAGES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", DESK_PAGES)
def test_desk_page_renders_within_a_query_budget(
    name, client, officer, book, django_assert_max_num_queries
):
    case_open(account=book["warning"], actor=officer, summary="watch")
    client.force_login(officer)
    with django_assert_max_num_queries(15):
        response = client.get(reverse(name))
    assert response.status_code == 200


def test_case_and_proposal_pages_render(client, officer, book):
    case = case_open(account=book["margin_call"], actor=officer, summary="watch")
    position = book["margin_call"].positions.get()
    proposal = forced_reduction_propose(
        position=position, quantity=Decimal("0.1"), reason="trim", proposer=officer, case=case
    )
    client.force_login(officer)
    case_page = client.get(reverse("desk:case", args=[case.pk])).content.decode()
    assert "BTCUSDT long 0.5" in case_page and f"#{proposal.pk}" in case_page
    proposal_page = client.get(reverse("desk:proposal", args=[proposal.pk])).content.decode()
    assert "You proposed this" in proposal_page


def test_heat_maps_add_up_to_the_book(client, officer, book):
    client.force_login(officer)
    context = client.get(reverse("desk:heatmap")).context
    btc = next(row for row in context["exposure_rows"] if row["asset"] == "BTC")
    assert sum(value for value, _ in btc["cells"]) == 3 * Decimal("0.5") * 85400
    assert max(level for _, level in btc["cells"]) == 5
    counts = {row["bucket"]: sum(c.accounts for c in row["cells"]) for row in context["ratio_rows"]}
    assert counts == {
        "below 25%": 1,
        "25% – 50%": 0,
        "50% – 80%": 1,
        "80% – 100%": 1,
        "100% and above": 0,
    }


def test_ratio_heat_map_is_coloured_by_risk_not_by_count(client, officer, book):
    # given: one account in each of the safest, the warning and the margin-call buckets
    client.force_login(officer)
    # when
    response = client.get(reverse("desk:heatmap"))
    rows = {row["bucket"]: row for row in response.context["ratio_rows"]}
    # then: the safest bucket's one account is not coloured as the worst cell (it was: the
    # colour followed the count, and every filled cell held the largest count, 1)
    risks = {label: {c.risk for c in row["cells"] if c.accounts} for label, row in rows.items()}
    assert risks["below 25%"] == {"safe"}
    assert risks["80% – 100%"] == {"call"}
    assert {c.risk for c in rows["25% – 50%"]["cells"]} == {"none"}
    assert 'data-risk="safe"' in response.content.decode()


@pytest.mark.parametrize(
    ("bucket_risk", "accounts", "uncovered", "risk"),
    [
        ("safe", 1700, 0, "safe"),
        ("safe", 1700, 26, "watch"),  # a few uncovered: a warning, not a margin call
        ("safe", 20, 2, "call"),  # a tenth of the cell uncovered
        ("low", 3, 3, "call"),
        ("liquidation", 9, 9, "liquidation"),
        ("safe", 0, 0, "none"),
    ],
)
def test_a_ratio_cell_is_raised_by_its_uncovered_share(bucket_risk, accounts, uncovered, risk):
    assert RiskCell(accounts, uncovered, bucket_risk).risk == risk


def test_disclosure_is_public(client, book):
    response = client.get(reverse("disclosure"))
    assert response.status_code == 200
    assert b"BTCUSDT" in response.content and b"in force" in response.content

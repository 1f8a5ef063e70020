"""Parameter changes: impact preview over the book, four-eyes approval writing a new version,
and the public disclosure page."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from margin.errors import ApplicationError
from margin.models import AuditEntry, Bracket, ParameterVersion, Proposal
from margin.selectors.parameters import parameters_in_force
from margin.services.parameters import parameter_impact_preview
from margin.services.proposals import parameter_change_propose, proposal_approve

pytestmark = pytest.mark.django_db


def test_impact_preview_counts_accounts_crossing_each_threshold(book):
    # given: a warning threshold just above the 'warning' account's ratio, and BTC's first
    # bracket asking 0.5 % instead of 0.4 %
    payload = {
        "fields": {"warning_ratio": "0.6"},
        "brackets": {
            "BTCUSDT": [
                {"floor": "0", "mmr": "0.005", "max_leverage": "125"},
                {"floor": "50000", "mmr": "0.006", "max_leverage": "100"},
            ]
        },
    }
    # when
    impact = parameter_impact_preview(payload=payload)
    # then: MM on 0.5 BTC at 85,400 rises by 42,700 × 0.001 for each of the three accounts
    assert impact["accounts"] == 3
    assert impact["maintenance_margin_change"] == pytest.approx(3 * 42700 * 0.001)
    assert impact["collateral_value_change"] == pytest.approx(0)
    by_name = {t["name"]: t for t in impact["thresholds"]}
    # the margin-call account (ratio 0.97) crosses liquidation at MM × 1.25
    assert by_name["liquidation_ratio"]["accounts_now"] == 0
    assert by_name["liquidation_ratio"]["newly_crossing"] == 1
    # the warning account (0.52) now sits at 0.65: still past the raised 0.6 warning line
    assert by_name["warning_ratio"]["accounts_now"] == 2
    assert by_name["warning_ratio"]["accounts_proposed"] == 2


def test_a_bad_change_is_refused_before_it_is_proposed(officer, book):
    with pytest.raises(Exception, match="thresholds must rise"):
        parameter_change_propose(
            payload={"fields": {"warning_ratio": "0.9"}}, reason="x", proposer=officer
        )
    with pytest.raises(Exception, match=r"floors must ascend|first floor"):
        parameter_change_propose(
            payload={
                "brackets": {"BTCUSDT": [{"floor": "10", "mmr": "0.01", "max_leverage": "5"}]}
            },
            reason="x",
            proposer=officer,
        )
    assert not Proposal.objects.exists()


def test_approval_writes_a_new_version_and_the_disclosure_page_shows_it(
    client, officer, manager, book
):
    # given
    before = parameters_in_force()
    proposal = parameter_change_propose(
        payload={
            "fields": {"margin_call_ratio": "0.75"},
            "haircuts": {"SOL": [{"floor": "0", "ratio": "0.8"}]},
        },
        reason="SOL liquidity thinner",
        proposer=officer,
    )
    assert proposal.impact["version"] == before.number
    public = client.get(reverse("disclosure"))
    assert public.status_code == 200 and b"75.00%" not in public.content
    # when
    proposal_approve(proposal=proposal, approver=manager)
    # then
    after = parameters_in_force()
    assert after.number == before.number + 1 and after.created_by == manager
    assert after.margin_call_ratio == Decimal("0.75")
    assert list(after.haircuts.filter(asset__symbol="SOL").values_list("ratio", flat=True)) == [
        Decimal("0.8")
    ]
    assert (
        Bracket.objects.filter(version=after).count()
        == Bracket.objects.filter(version=before).count()
    )
    assert ParameterVersion.objects.get(pk=before.pk).margin_call_ratio == before.margin_call_ratio
    assert AuditEntry.objects.get(action="params.version").after["version"] == after.number
    client.logout()
    public = client.get(reverse("disclosure")).content.decode()
    assert f"version {after.number}" in public and "75.00%" in public
    assert "SOL liquidity thinner" in public and "superseded" in public
    # the new version carries the published volatility floors over, and the page shows them
    floors = dict(after.volatility_floors.values_list("asset__symbol", "daily_vol"))
    assert floors == dict(before.volatility_floors.values_list("asset__symbol", "daily_vol"))
    assert floors["BTC"] == Decimal("0.02")
    assert 'id="volatility-floors"' in public and '<td>BTC</td><td class="num">2.00%</td>' in public


def test_a_change_scheduled_for_later_is_disclosed_as_scheduled(officer, manager, book, client):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(days=1)
    proposal = parameter_change_propose(
        payload={"fields": {"liquidation_fee_rate": "0.006"}, "effective_at": later.isoformat()},
        reason="fee up tomorrow",
        proposer=officer,
    )
    proposal_approve(proposal=proposal, approver=manager)
    assert parameters_in_force().liquidation_fee_rate == Decimal("0.005")
    page = client.get(reverse("disclosure")).content.decode()
    assert "scheduled" in page and "fee up tomorrow" in page


def test_preview_fragment_and_proposal_through_the_desk_page(client, officer, book):
    client.force_login(officer)
    form = {
        "warning_ratio": "0.45",
        "stress_ewma_lambda": "0.97",
        "bracket_instrument": "ETHUSDT",
        "brackets": "0 0.005 100\n50000 0.0075 50",
        "reason": "tighten",
        "ttl_hours": "24",
    }
    preview = client.post(reverse("desk:parameters_preview"), form, headers={"HX-Request": "true"})
    assert preview.status_code == 200 and b"Impact preview" in preview.content
    assert b"<html" not in preview.content
    response = client.post(reverse("desk:parameters_propose"), form)
    proposal = Proposal.objects.get(kind=Proposal.Kind.PARAMETER_CHANGE)
    assert response.url == reverse("desk:proposal", args=[proposal.pk])
    assert proposal.payload == {
        "fields": {"warning_ratio": "0.45", "stress_ewma_lambda": "0.97"},
        "brackets": {
            "ETHUSDT": [
                {"floor": "0", "mmr": "0.005", "max_leverage": "100"},
                {"floor": "50000", "mmr": "0.0075", "max_leverage": "50"},
            ]
        },
    }


def test_a_volatility_floor_is_changed_through_the_four_eyes_proposal(
    client, officer, manager, book
):
    # given: BTC's published floor is 2 % a day
    before = parameters_in_force()
    assert before.volatility_floors.get(asset__symbol="BTC").daily_vol == Decimal("0.02")
    # when: raising it to 4.5 % is previewed, proposed and approved
    payload = {"volatility_floors": {"BTC": "0.045"}}
    impact = parameter_impact_preview(payload=payload)
    proposal = parameter_change_propose(
        payload=payload, reason="thin BTC history", proposer=officer
    )
    proposal_approve(proposal=proposal, approver=manager)
    # then: a new version with BTC's floor raised and every other floor carried over
    after = parameters_in_force()
    floors = dict(after.volatility_floors.values_list("asset__symbol", "daily_vol"))
    assert floors["BTC"] == Decimal("0.045")
    others = dict(
        before.volatility_floors.exclude(asset__symbol="BTC").values_list(
            "asset__symbol", "daily_vol"
        )
    )
    assert {a: f for a, f in floors.items() if a != "BTC"} == others
    assert impact["accounts"] == 3
    note = AuditEntry.objects.get(action="params.version").after["changes"]
    assert "BTC volatility floor 0.02" in note and "→ 0.045" in note
    public = client.get(reverse("disclosure")).content.decode()
    assert '<td>BTC</td><td class="num">4.50%</td>' in public


@pytest.mark.parametrize(
    ("floor", "refusal"),
    [("0", "must lie in (0, 1)"), ("1", "must lie in (0, 1)"), ("-0.01", "must lie in (0, 1)")],
)
def test_a_volatility_floor_outside_0_1_is_refused(officer, book, floor, refusal):
    with pytest.raises(ApplicationError, match=re.escape(refusal)) as refused:
        parameter_change_propose(
            payload={"volatility_floors": {"ETH": floor}}, reason="x", proposer=officer
        )
    assert "volatility_floors.ETH" in refused.value.extra
    assert not Proposal.objects.exists()


def test_a_volatility_floor_of_an_unknown_asset_is_refused(officer, book):
    with pytest.raises(ApplicationError, match="Unknown: NOPE"):
        parameter_change_propose(
            payload={"volatility_floors": {"NOPE": "0.03"}}, reason="x", proposer=officer
        )


def test_the_desk_page_proposes_a_volatility_floor(client, officer, book):
    client.force_login(officer)
    response = client.post(
        reverse("desk:parameters_propose"),
        {"volatility_floors": "eth 0.05", "reason": "ETH floor", "ttl_hours": "24"},
    )
    assert response.status_code in (200, 302), response.content[:500]
    proposal = Proposal.objects.get()
    assert proposal.payload["volatility_floors"] == {"ETH": "0.05"}

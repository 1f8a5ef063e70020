from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.api.problems import problem_type
from margin.models import AuditEntry, CascadeRun, Case, Proposal, StressRun
from margin.numbers import money_text, percent_text
from margin.services.revaluation import revaluation_tick_run
from tests.api.conftest import order, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def leveraged(trader_api, account):
    """The trader's account long BTC, revalued once."""
    order(trader_api, account, "BTCUSDT", quantity="0.5", key="open-long")
    revaluation_tick_run(now=timezone.now())
    return account


def test_the_queue_lists_the_latest_ticks_accounts_with_positions(officer_api, leveraged):
    # when
    response = officer_api.get(reverse("api:desk-queue"))
    # then
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["account_id"] for row in rows] == [leveraged.pk]
    assert rows[0]["margin_ratio"] is not None
    balance, stress = Decimal(rows[0]["margin_balance"]), Decimal(rows[0]["stress_margin"])
    assert Decimal(rows[0]["stress_cover"]) == balance - stress
    # beside the decimals, their display under the number policy: the ratio a percentage
    assert rows[0]["display"]["margin_ratio"] == percent_text(Decimal(rows[0]["margin_ratio"]))
    assert rows[0]["display"]["stress_margin"] == money_text(stress, "USD")


def test_the_queue_ratio_filter_takes_a_percentage(officer_api, leveraged):
    ratio = Decimal(officer_api.get(reverse("api:desk-queue")).json()["results"][0]["margin_ratio"])
    above = (ratio * 100 * 2).quantize(Decimal("0.0001"))
    below = (ratio * 100 / 2).quantize(Decimal("0.0001"))
    assert officer_api.get(reverse("api:desk-queue"), {"min_ratio": above}).json()["results"] == []
    listed = officer_api.get(reverse("api:desk-queue"), {"min_ratio": below}).json()["results"]
    assert [row["account_id"] for row in listed] == [leveraged.pk]


def test_the_queue_filters_by_state(officer_api, leveraged):
    response = officer_api.get(reverse("api:desk-queue"), {"state": "bankrupt"})
    assert response.status_code == 200 and response.json()["results"] == []


def test_the_queue_says_and_filters_which_liquidations_a_stale_price_held(officer_api, leveraged):
    # given: the account's liquidation at the latest tick was held back by a stale price
    from margin.models import Liquidation, RevaluationTick

    rows = officer_api.get(reverse("api:desk-queue")).json()["results"]
    assert [row["stale_blocked"] for row in rows] == [False]
    tick = RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE).latest("pk")
    Liquidation.objects.create(account=leveraged, tick=tick, status=Liquidation.Status.HELD)
    # when
    held = officer_api.get(reverse("api:desk-queue"), {"stale_blocked": "true"}).json()
    free = officer_api.get(reverse("api:desk-queue"), {"stale_blocked": "false"}).json()
    # then
    assert [(r["account_id"], r["stale_blocked"]) for r in held["results"]] == [
        (leveraged.pk, True)
    ]
    assert free["results"] == []


def test_a_case_is_opened_annotated_assigned_and_closed_on_the_audit_trail(
    officer_api, manager, leveraged
):
    # when
    opened = post(
        officer_api,
        reverse("api:desk-case-open", args=[leveraged.pk]),
        {"summary": "High leverage"},
        "case-1",
    )
    case_id = opened.json()["id"]
    note = post(
        officer_api, reverse("api:desk-case-note", args=[case_id]), {"body": "Called"}, "note-1"
    )
    assigned = post(
        officer_api,
        reverse("api:desk-case-assign", args=[case_id]),
        {"assignee": manager.username},
        "assign-1",
    )
    closed = post(
        officer_api,
        reverse("api:desk-case-close", args=[case_id]),
        {"resolution": "Reduced"},
        "close-1",
    )
    shown = officer_api.get(reverse("api:desk-case", args=[case_id])).json()
    # then
    assert [r.status_code for r in (opened, note, assigned, closed)] == [201] * 4
    assert shown["status"] == "closed" and shown["assignee"] == manager.username
    assert [n["body"] for n in shown["notes"]] == ["Called"]
    actions = set(
        AuditEntry.objects.filter(subject=f"case:{case_id}").values_list("action", flat=True)
    )
    assert actions == {"case.open", "case.note", "case.assign", "case.close"}


def test_a_second_open_case_on_one_account_is_refused(officer_api, leveraged):
    url = reverse("api:desk-case-open", args=[leveraged.pk])
    post(officer_api, url, {"summary": "first"}, "c-a")
    response = post(officer_api, url, {"summary": "second"}, "c-b")
    assert response.status_code == 400
    assert response.json()["type"] == problem_type("refused")
    assert Case.objects.filter(margin_account=leveraged).count() == 1


def test_the_desk_assigns_the_portfolio_scheme_over_the_api_and_the_account_shows_it(
    officer_api, manager_api, trader_api, leveraged
):
    # given
    assert (
        trader_api.get(reverse("api:account", args=[leveraged.pk])).json()["margin_scheme"]
        == "standard"
    )
    case_id = post(
        officer_api,
        reverse("api:desk-case-open", args=[leveraged.pk]),
        {"summary": "Hedged book"},
        "case-scheme",
    ).json()["id"]
    url = reverse("api:desk-margin-scheme-change", args=[case_id])
    # when: an unknown scheme, then the portfolio scheme, approved by a manager
    unknown = post(officer_api, url, {"scheme": "options", "reason": "r"}, "scheme-0")
    proposed = post(officer_api, url, {"scheme": "portfolio", "reason": "hedged"}, "scheme-1")
    assert proposed.status_code == 201, proposed.content
    approved = post(
        manager_api,
        reverse("api:desk-proposal-approve", args=[proposed.json()["id"]]),
        {},
        "scheme-ap",
    )
    # then
    assert unknown.status_code == 400 and "scheme" in unknown.json()["errors"]
    assert proposed.json()["kind"] == "margin_scheme_change"
    assert approved.status_code == 201, approved.content
    assert approved.json()["status"] == "executed"
    detail = trader_api.get(reverse("api:account", args=[leveraged.pk])).json()
    assert detail["margin_scheme"] == "portfolio"
    desk_view = officer_api.get(reverse("api:desk-account", args=[leveraged.pk])).json()
    assert desk_view["margin_scheme"] == "portfolio"


def test_four_eyes_an_officer_proposes_and_only_a_manager_approves(
    officer_api, manager_api, leveraged
):
    # given
    case_id = post(
        officer_api,
        reverse("api:desk-case-open", args=[leveraged.pk]),
        {"summary": "Reduce"},
        "case-4e",
    ).json()["id"]
    proposed = post(
        officer_api,
        reverse("api:desk-forced-reduction", args=[case_id]),
        {"instrument": "BTCUSDT", "quantity": "0.2", "reason": "Too big"},
        "reduce-1",
    )
    proposal_id = proposed.json()["id"]
    # when
    by_officer = post(
        officer_api, reverse("api:desk-proposal-approve", args=[proposal_id]), {}, "ap-1"
    )
    by_manager = post(
        manager_api, reverse("api:desk-proposal-approve", args=[proposal_id]), {}, "ap-2"
    )
    # then
    assert proposed.status_code == 201
    assert by_officer.status_code == 403
    assert by_manager.status_code == 201, by_manager.content
    assert by_manager.json()["status"] == Proposal.Status.EXECUTED
    assert leveraged.positions.get(instrument__symbol="BTCUSDT").quantity == Decimal("0.3")


def test_a_parameter_change_previews_its_impact_then_is_proposed(officer_api, leveraged):
    change = {"fields": {"warning_ratio": "0.3"}, "reason": "Earlier warnings"}
    # when
    impact = post(
        officer_api, reverse("api:desk-parameter-change"), {**change, "dry_run": True}, "p-1"
    )
    proposed = post(officer_api, reverse("api:desk-parameter-change"), change, "p-2")
    # then
    assert impact.status_code == 200 and impact.json()["accounts"] == 1
    assert proposed.status_code == 201
    assert proposed.json()["kind"] == "parameter_change"
    assert proposed.json()["impact"]["version"] == 1


def test_a_bad_parameter_change_names_the_field(officer_api, leveraged):
    response = post(
        officer_api,
        reverse("api:desk-parameter-change"),
        {"fields": {"warning_ratio": "0.99"}, "reason": "x", "dry_run": True},
        "p-bad",
    )
    assert response.status_code == 400
    assert "warning_ratio" in response.json()["errors"]


def test_a_stress_run_is_saved_and_readable(officer_api, leveraged):
    # when
    created = post(
        officer_api,
        reverse("api:desk-stress-runs"),
        {"scenario": "uniform", "move": "-0.3"},
        "stress-1",
    )
    # then
    assert created.status_code == 201, created.content
    run = StressRun.objects.get()
    shown = officer_api.get(reverse("api:desk-stress-run", args=[run.pk])).json()
    assert shown["accounts"] == 1 and shown["options"] == {"move": "-0.300000"}


def test_a_cascade_run_is_queued(officer_api, leveraged):
    response = post(
        officer_api,
        reverse("api:desk-cascade-runs"),
        {"scenario": "uniform", "move": "-0.3", "max_rounds": 3},
        "cascade-1",
    )
    assert response.status_code == 201
    assert CascadeRun.objects.get().status == CascadeRun.Status.QUEUED


def test_the_parameters_are_public_with_the_version_in_force_marked(anonymous, reference):
    versions = anonymous.get(reverse("api:parameters")).json()
    assert [v["in_force"] for v in versions] == [True]
    assert versions[0]["brackets"]["BTCUSDT"][0]["floor"] == "0.000000000000000000"

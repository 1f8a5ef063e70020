"""Cases, account actions and four-eyes proposals, through the desk's pages (HTTP) and the
database, each step on the audit trail."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.models import (
    AuditEntry,
    Case,
    Fill,
    MarginAccount,
    MarginScheme,
    Notification,
    Position,
    Proposal,
)
from margin.services.desk import case_open
from margin.services.proposals import forced_reduction_propose, proposals_expire

pytestmark = pytest.mark.django_db


def actions_on(account) -> list[str]:
    return list(
        AuditEntry.objects.filter(margin_account=account)
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_officer_opens_a_case_adds_a_note_restricts_and_calls_margin(client, officer, book):
    # given
    account = book["margin_call"]
    client.force_login(officer)
    # when
    client.post(reverse("desk:case_open", args=[account.pk]), {"summary": "Ratio 0.97"})
    case = Case.objects.get(margin_account=account)
    client.post(reverse("desk:case_note", args=[case.pk]), {"body": "Called the trader"})
    client.post(
        reverse("desk:case_reduce_only", args=[case.pk]),
        {"reduce_only": "1", "reason": "Margin call unanswered"},
    )
    client.post(reverse("desk:case_margin_call", args=[case.pk]), {"message": "Add collateral"})
    client.post(reverse("desk:case_close", args=[case.pk]), {"resolution": "Trader topped up"})
    # then
    account.refresh_from_db()
    case.refresh_from_db()
    assert account.reduce_only and case.status == Case.Status.CLOSED
    assert case.notes.get().body == "Called the trader"
    call = Notification.objects.get(
        account=account, kind=Notification.Kind.MARGIN_CALL, text="Add collateral"
    )
    assert call.user == account.owner
    trail = AuditEntry.objects.filter(margin_account=account, actor=officer).order_by("pk")
    assert [e.action for e in trail] == [
        "case.open",
        "case.note",
        "account.reduce_only",
        "account.margin_call",
        "case.close",
    ]
    assert trail[2].before == {"reduce_only": False} and trail[2].after == {"reduce_only": True}


def test_a_second_open_case_on_the_same_account_is_refused(officer, officer2, book):
    case_open(account=book["warning"], actor=officer, summary="first")
    with pytest.raises(Exception, match="already has an open case"):
        case_open(account=book["warning"], actor=officer2, summary="second")
    assert Case.objects.filter(margin_account=book["warning"]).count() == 1


def test_forced_reduction_needs_a_manager_who_is_not_the_proposer(
    client, officer, officer2, manager, book
):
    # given: an officer proposes halving the BTC position
    account = book["margin_call"]
    case = case_open(account=account, actor=officer, summary="at risk")
    position = Position.objects.get(margin_account=account)
    client.force_login(officer)
    client.post(
        reverse("desk:case_propose_reduction", args=[case.pk]),
        {"position": position.pk, "quantity": "0.25", "reason": "halve it", "ttl_hours": "2"},
    )
    proposal = Proposal.objects.get(kind=Proposal.Kind.FORCED_REDUCTION)
    approve = reverse("desk:proposal_approve", args=[proposal.pk])
    # when: the proposer, then another officer, try to approve
    assert client.post(approve).status_code == 403
    client.force_login(officer2)
    assert client.post(approve).status_code == 403
    # then nothing moved
    position.refresh_from_db()
    assert position.quantity == Decimal("0.5")
    # when: a manager approves
    client.force_login(manager)
    client.post(approve, {"note": "agreed"})
    # then: half the position is sold through the ledger at the slipped mark
    proposal.refresh_from_db()
    position.refresh_from_db()
    assert proposal.status == Proposal.Status.EXECUTED and proposal.approver == manager
    assert position.quantity == Decimal("0.25")
    fill = Fill.objects.get(position=position, reason=Fill.Reason.DESK)
    assert fill.quantity == Decimal("-0.25") and fill.journal is not None
    assert fill.price == Decimal("85400") * (1 - Decimal("0.002"))
    assert actions_on(account)[-3:] == [
        "proposal.create.forced_reduction",
        "account.forced_reduction",
        "proposal.approve.forced_reduction",
    ]


def test_a_manager_cannot_approve_their_own_proposal(manager, book):
    from margin.services.proposals import proposal_approve

    position = Position.objects.get(margin_account=book["warning"])
    proposal = forced_reduction_propose(
        position=position, quantity=Decimal("0.1"), reason="x", proposer=manager
    )
    with pytest.raises(Exception, match="cannot approve your own"):
        proposal_approve(proposal=proposal, approver=manager)
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.PENDING


def test_credit_tier_change_is_carried_out_on_approval(client, officer, manager, book):
    account = book["healthy"]
    case = case_open(account=account, actor=officer, summary="review tier")
    client.force_login(officer)
    vip = account.credit_tier.__class__.objects.exclude(pk=account.credit_tier_id).first()
    client.post(
        reverse("desk:case_propose_tier", args=[case.pk]),
        {"tier": vip.pk, "reason": "strong history", "ttl_hours": "24"},
    )
    proposal = Proposal.objects.get(kind=Proposal.Kind.CREDIT_TIER_CHANGE)
    client.force_login(manager)
    client.post(reverse("desk:proposal_approve", args=[proposal.pk]))
    assert MarginAccount.objects.get(pk=account.pk).credit_tier == vip
    entry = AuditEntry.objects.get(action="account.credit_tier")
    assert entry.after == {"credit_tier": vip.code} and entry.actor == manager


def test_margin_scheme_change_needs_four_eyes_and_is_audited(client, officer, manager, book):
    # given
    account = book["healthy"]
    assert account.margin_scheme == MarginScheme.STANDARD
    case = case_open(account=account, actor=officer, summary="portfolio margin request")
    client.force_login(officer)
    # when: the officer proposes; the account has not moved yet
    client.post(
        reverse("desk:case_propose_scheme", args=[case.pk]),
        {"scheme": "portfolio", "reason": "hedged book", "ttl_hours": "24"},
    )
    proposal = Proposal.objects.get(kind=Proposal.Kind.MARGIN_SCHEME_CHANGE)
    assert proposal.payload == {"from": "standard", "to": "portfolio"}
    assert MarginAccount.objects.get(pk=account.pk).margin_scheme == MarginScheme.STANDARD
    # the proposer cannot approve it; a manager does
    client.post(reverse("desk:proposal_approve", args=[proposal.pk]))
    assert MarginAccount.objects.get(pk=account.pk).margin_scheme == MarginScheme.STANDARD
    client.force_login(manager)
    client.post(reverse("desk:proposal_approve", args=[proposal.pk]))
    # then
    assert MarginAccount.objects.get(pk=account.pk).margin_scheme == MarginScheme.PORTFOLIO
    entry = AuditEntry.objects.get(action="account.margin_scheme")
    assert entry.before == {"margin_scheme": "standard"}
    assert entry.after == {"margin_scheme": "portfolio"} and entry.actor == manager


def test_a_margin_scheme_proposal_that_changes_nothing_or_names_no_scheme_is_refused(
    client, officer, book
):
    account = book["healthy"]
    case = case_open(account=account, actor=officer, summary="x")
    client.force_login(officer)
    for scheme in ("standard", "grid"):
        response = client.post(
            reverse("desk:case_propose_scheme", args=[case.pk]),
            {"scheme": scheme, "reason": "x", "ttl_hours": "24"},
        )
        assert response.status_code in (302, 400)
    assert not Proposal.objects.filter(kind=Proposal.Kind.MARGIN_SCHEME_CHANGE).exists()


def test_proposals_expire_and_an_expired_one_cannot_be_approved(officer, manager, book):
    from margin.services.proposals import proposal_approve

    position = Position.objects.get(margin_account=book["warning"])
    stale = forced_reduction_propose(
        position=position,
        quantity=Decimal("0.1"),
        reason="x",
        proposer=officer,
        ttl=timedelta(minutes=1),
    )
    # when the expiry job runs after its time
    assert proposals_expire(now=timezone.now() + timedelta(minutes=2)) == 1
    stale.refresh_from_db()
    assert stale.status == Proposal.Status.EXPIRED
    with pytest.raises(Exception, match="Expired"):
        proposal_approve(proposal=stale, approver=manager)
    assert AuditEntry.objects.filter(action="proposal.expire", actor__isnull=True).count() == 1


def test_reject_leaves_the_account_alone(client, officer, manager, book):
    position = Position.objects.get(margin_account=book["warning"])
    proposal = forced_reduction_propose(
        position=position, quantity=Decimal("0.5"), reason="x", proposer=officer
    )
    client.force_login(manager)
    client.post(reverse("desk:proposal_reject", args=[proposal.pk]), {"note": "not needed"})
    proposal.refresh_from_db()
    position.refresh_from_db()
    assert proposal.status == Proposal.Status.REJECTED and position.quantity == Decimal("0.5")


def test_audit_trail_filters_and_exports_csv(client, officer, book):
    case_open(account=book["warning"], actor=officer, summary="first")
    case_open(account=book["healthy"], actor=officer, summary="second")
    client.force_login(officer)
    page = client.get(reverse("desk:audit"), {"margin_account": book["healthy"].pk})
    assert [e.subject for e in page.context["page"]] == [
        f"case:{Case.objects.get(margin_account=book['healthy']).pk}"
    ]
    export = client.get(reverse("desk:audit_csv"), {"action": "case."})
    lines = b"".join(export.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("id,at,actor,action")
    assert len(lines) == 3 and all(",officer1,case.open," in line for line in lines[1:])


def test_account_review_shows_plan_exposures_and_stress(client, officer, book):
    client.force_login(officer)
    response = client.get(reverse("desk:account", args=[book["margin_call"].pk]))
    review = response.context["review"]
    # The preview is the liquidation's own plan: a reduction costs slippage and the fee (0.7 %
    # of the notional together) against the 0.4 % of maintenance margin a unit frees, so no
    # partial step brings the ratio down and the pool would be taken over, as the liquidation
    # would (tests/revaluation/test_liquidation.py)
    plan = review.plan
    assert plan.margin_ratio_before > plan.target_ratio
    assert plan.slippage > review.quote.positions[0].mmr
    assert plan.steps == () and not plan.reaches_target
    assert b"the pool would be taken over" in response.content
    btc = next(e for e in review.exposures if e.asset == "BTC")
    assert btc.position_delta_usd == Decimal("0.5") * Decimal("85400")
    crash = next(s for s in review.scenarios if s.label == "Every coin -10%")
    assert crash.under_maintenance and crash.deficit > 0
    (usdt,) = review.collateral
    assert usdt.asset == "USDT" and usdt.collateral_value == usdt.usd_value > 0
    assert b"Liquidation plan" in response.content

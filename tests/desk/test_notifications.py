"""What the desk does to an account reaches its trader: in the app, by e-mail, and on the
account's page until acknowledged (forced reduction, reduce-only with its reason, credit tier,
margin call, case closed)."""

import pytest
from django.urls import reverse

from margin.models import CreditTier, Notification, Position, Proposal
from margin.services.desk import case_open
from margin.services.notifications import notification_email_send

pytestmark = pytest.mark.django_db


def test_each_desk_action_notifies_the_trader_in_the_app_and_by_email(
    client, officer, manager, book, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    account = book["margin_call"]
    case = case_open(account=account, actor=officer, summary="at risk")
    position = Position.objects.get(margin_account=account)
    vip = CreditTier.objects.get(code="vip")
    with django_capture_on_commit_callbacks() as on_commit:
        # when: the officer restricts, calls margin and proposes; the manager approves
        client.force_login(officer)
        client.post(
            reverse("desk:case_reduce_only", args=[case.pk]),
            {"reduce_only": "1", "reason": "Margin call unanswered for an hour"},
        )
        client.post(reverse("desk:case_margin_call", args=[case.pk]), {"message": "Add USDT"})
        client.post(
            reverse("desk:case_propose_tier", args=[case.pk]),
            {"tier": vip.pk, "reason": "Verified fund", "ttl_hours": "2"},
        )
        client.post(
            reverse("desk:case_propose_reduction", args=[case.pk]),
            {"position": position.pk, "quantity": "0.25", "reason": "halve it", "ttl_hours": "2"},
        )
        client.force_login(manager)
        for proposal in Proposal.objects.filter(margin_account=account):
            client.post(reverse("desk:proposal_approve", args=[proposal.pk]), {"note": "ok"})
        client.force_login(officer)
        client.post(reverse("desk:case_close", args=[case.pk]), {"resolution": "Trader topped up"})
    # then: one notice of each kind for the owner, each with its e-mail queued on commit
    notices = {n.kind: n for n in Notification.objects.filter(account=account)}
    assert sum("notification_send" in c.__qualname__ for c in on_commit) == 5
    for notice in notices.values():
        assert notification_email_send(notification_id=notice.pk)
    kinds = Notification.Kind
    assert set(notices) == {
        kinds.REDUCE_ONLY,
        kinds.MARGIN_CALL,
        kinds.CREDIT_TIER,
        kinds.FORCED_REDUCTION,
        kinds.CASE_CLOSED,
    }
    assert all(n.user_id == account.owner_id for n in notices.values())
    assert "Reason: Margin call unanswered for an hour" in notices[kinds.REDUCE_ONLY].text
    assert "from credit tier Standard to VIP" in notices[kinds.CREDIT_TIER].text
    reduction = notices[kinds.FORCED_REDUCTION].text
    assert "reduced your BTCUSDT position by 0.25 at 85,229.20" in reduction
    assert "realized PnL −" in reduction and "Reason: halve it" in reduction
    assert "Trader topped up" in notices[kinds.CASE_CLOSED].text
    assert len(mailoutbox) == 5
    assert {m.to[0] for m in mailoutbox} == {account.owner.email}


def test_desk_notices_stay_on_the_account_page_until_acknowledged(client, officer, book):
    # given: the desk set the account reduce-only
    account = book["warning"]
    case = case_open(account=account, actor=officer, summary="watch")
    client.force_login(officer)
    client.post(
        reverse("desk:case_reduce_only", args=[case.pk]),
        {"reduce_only": "1", "reason": "Ratio above 80% for a day"},
    )
    client.force_login(account.owner)
    page = reverse("trader:account", args=[account.pk])
    # when / then: shown on every visit until acknowledged
    assert "Ratio above 80% for a day" in client.get(page).content.decode()
    assert "Ratio above 80% for a day" in client.get(page).content.decode()
    response = client.post(reverse("trader:notices_acknowledge", args=[account.pk]))
    assert response["HX-Trigger"] == "notifications-read"
    assert "Ratio above 80% for a day" not in client.get(page).content.decode()
    # and another trader cannot acknowledge them
    assert Notification.objects.filter(account=account, read_at__isnull=True).count() == 0


def test_acknowledging_another_traders_account_is_a_404(client, book, make_user):
    from accounts.roles import TRADER

    client.force_login(make_user(TRADER))
    url = reverse("trader:notices_acknowledge", args=[book["warning"].pk])
    assert client.post(url).status_code == 404

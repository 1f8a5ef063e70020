"""The desk's journey in real headless Chromium: queue → case → forced reduction proposed by an
officer, refused to a second officer, approved by a manager, booked through the ledger, and
every step on the audit trail."""

from decimal import Decimal

import pytest

from margin.models import Fill, Position, Proposal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_officer_to_manager_forced_reduction_journey(
    sign_in, live_server, officer, officer2, manager, book, csp_violations
):
    account = book["margin_call"]
    # an officer opens the queue: the margin-call account is first
    page = sign_in(officer)
    first_row = page.locator("#queue-table tbody tr").first
    assert first_row.get_attribute("data-account") == str(account.pk)
    assert "Margin call" in first_row.inner_text()
    # ... opens it and a case on it
    first_row.locator("a").first.click()
    page.wait_for_url(f"**/desk/accounts/{account.pk}/")
    # the review previews the liquidation: at 0.7 % slippage and fee against 0.4 % MM per unit no
    # partial step helps, so it says the pool would be taken over (tests/desk/test_actions.py)
    assert "the pool would be taken over" in page.locator("#liquidation-preview").inner_text()
    page.fill("#id_summary", "Ratio 0.97 after the BTC drop")
    page.click("#case-open-form button")
    page.click("#case-link")
    # ... and proposes selling half the BTC position
    page.select_option("#reduction-form select[name=position]", label="BTCUSDT long 0.50")
    page.fill("#reduction-form input[name=quantity]", "0.25")
    page.fill("#reduction-form textarea[name=reason]", "Halve the exposure")
    page.click("#reduction-form button")
    assert "a risk manager must approve it" in page.locator(".messages").inner_text()
    page.click("#case-proposals a")
    assert page.locator("#proposal-status").inner_text() == "Pending approval"
    assert page.locator("#decision-form button.primary").count() == 0
    proposal_url = page.url

    # a second officer, without the manager's role, cannot approve
    other = sign_in(officer2)
    other.goto(proposal_url)
    assert other.locator("#decision-form button.primary").count() == 0
    assert "Only a risk manager" in other.locator("#four-eyes-note").inner_text()
    refused = other.request.post(
        proposal_url + "approve/",
        headers={"X-CSRFToken": other.context.cookies()[0]["value"]},
    )
    assert refused.status == 403
    assert Position.objects.get(margin_account=account).quantity == Decimal("0.5")

    # a manager approves: the position is reduced through the ledger
    boss = sign_in(manager)
    boss.goto(proposal_url)
    boss.fill("#decision-form textarea[name=note]", "Agreed")
    boss.click("#decision-form button.primary")
    assert boss.locator("#proposal-status").inner_text() == "Approved and carried out"
    assert "quantity after" in boss.locator("#proposal-result").inner_text()
    position = Position.objects.get(margin_account=account)
    assert position.quantity == Decimal("0.25")
    fill = Fill.objects.get(position=position, reason=Fill.Reason.DESK)
    assert fill.journal.entries.count() >= 2
    assert Proposal.objects.get().approver == manager

    # the audit trail shows every step, with who did it
    boss.goto(f"{live_server.url}/desk/audit/?margin_account={account.pk}")
    rows = boss.locator("#audit tbody tr").all_inner_texts()
    steps = [(r.split("\t")[1], r.split("\t")[2]) for r in reversed(rows)]
    # the revaluation job's automatic transition to margin call comes first
    assert steps[0] == ("system", "account.state_change")
    desk_steps = [s for s in steps if s[0] != "system"]
    assert desk_steps == [
        ("officer1", "case.open"),
        ("officer1", "proposal.create.forced_reduction"),
        ("manager1", "account.forced_reduction"),
        ("manager1", "proposal.approve.forced_reduction"),
    ]
    assert csp_violations == []

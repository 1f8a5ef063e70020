"""A parameter change in the browser: previewed (htmx fragment), proposed, approved by a
manager, and shown on the public disclosure page to a visitor who is not logged in."""

import pytest

from margin.models import ParameterVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_parameter_change_reaches_the_public_disclosure_page(
    sign_in, browser, live_server, officer, manager, book, csp_violations
):
    before = ParameterVersion.objects.count()
    # an officer previews the impact of a lower margin-call line, then proposes it
    page = sign_in(officer)
    page.goto(f"{live_server.url}/desk/parameters/")
    page.fill("#parameter-form input[name=margin_call_ratio]", "0.75")
    page.fill("#parameter-form textarea[name=reason]", "Earlier margin calls")
    page.click("#parameter-form button[type=button]")
    page.locator("#impact-preview table.impact").wait_for()
    assert "margin_call_ratio" in page.locator("#impact-preview").inner_text()
    page.click("#parameter-form button[type=submit]")
    page.wait_for_url("**/desk/proposals/*/")
    proposal_url = page.url
    # a manager approves it
    boss = sign_in(manager)
    boss.goto(proposal_url)
    boss.click("#decision-form button.primary")
    assert boss.locator("#proposal-status").inner_text() == "Approved and carried out"
    # a visitor sees the new version in force, with the reason, and the old one superseded
    visitor = browser.new_context().new_page()
    visitor.goto(f"{live_server.url}/disclosure/")
    assert f"version {before + 1}" in visitor.locator("h1").inner_text()
    history = visitor.locator("#versions").inner_text()
    assert "Earlier margin calls" in history and "superseded" in history
    assert "75.00%" in visitor.locator("#in-force").inner_text()
    visitor.context.close()
    assert csp_violations == []

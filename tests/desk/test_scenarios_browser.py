"""The scenario page in a real browser: an officer pastes the shipped example, runs it and sees
its liquidation in the timeline and the charts of the ratio and the fund."""

import pytest

from margin.models import ScenarioRun
from tests.scenarios.support import EXAMPLE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_officer_pastes_the_example_and_sees_its_timeline(
    sign_in, live_server, officer, csp_violations
):
    page = sign_in(officer)
    page.goto(f"{live_server.url}/desk/scenarios/")
    page.fill("#scenario-form textarea[name=text]", EXAMPLE.read_text(encoding="utf-8"))
    page.click("#scenario-form button[type=submit]")
    page.wait_for_url("**/desk/scenarios/*/")
    timeline = page.locator("#scenario-timeline").inner_text()
    assert "liquidation" in timeline and "alice" in timeline
    assert page.locator("#scenario-exit").inner_text() == "0"
    charts = page.locator("#scenario-charts .scenario-chart")
    assert charts.count() == 2
    assert "alice margin ratio" in charts.nth(0).inner_text()
    assert "insurance fund USDT: 100000 →" in charts.nth(1).inner_text()
    assert page.locator("#scenario-charts polyline").first.get_attribute("points")
    (run,) = ScenarioRun.objects.all()
    assert page.url.endswith(f"/desk/scenarios/{run.pk}/")
    assert csp_violations == []

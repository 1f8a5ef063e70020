"""The desk's scenario page: the shipped example run through the page (pasted and uploaded)
shows the events of `manage.py run_scenario` as a timeline and charts its ratios and fund from
the same output; runs are saved; only the desk sees them; bad input is a form error, never a
500, and saves nothing."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import TRADER
from margin.errors import ApplicationError
from margin.input_limits import SCENARIO_MAX_BYTES
from margin.models import AuditEntry, ScenarioRun
from tests.scenarios.support import EXAMPLE, run_scenario

pytestmark = pytest.mark.django_db


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def test_the_example_runs_from_the_page_and_its_timeline_and_charts_are_the_runners(
    client, officer
):
    # given: what the command prints for the example
    expected = run_scenario(json.loads(example_text())["scenario"])
    client.force_login(officer)
    # when: an officer pastes the example
    response = client.post(reverse("desk:scenarios"), {"text": example_text()})
    # then: one run saved, with who, the input as given, the output and exit status 0
    (run,) = ScenarioRun.objects.all()
    assert response.status_code == 302
    assert response["Location"] == reverse("desk:scenario_detail", args=[run.pk])
    assert run.created_by == officer and run.name == "pasted" and run.exit_status == 0
    assert run.input_text == example_text()
    assert run.output["events"] == expected["events"]
    assert run.output["timeline"] == expected["timeline"]
    assert AuditEntry.objects.filter(action="scenario.run", actor=officer).count() == 1
    # and its page shows every event in the timeline, at its step
    page = client.get(response["Location"])
    html = page.content.decode()
    rows = [
        (step["at_s"], e["kind"], e["account"])
        for step in page.context["steps"]
        for e in step["events"]
    ]
    assert rows == [(e["at_s"], e["kind"], e.get("account", "")) for e in expected["events"]]
    liquidations = [e for e in expected["events"] if e["kind"] == "liquidation"]
    assert liquidations and html.count('<tr class="scenario-event">') == len(expected["events"])
    assert f"fee {liquidations[0]['fee']}" in html
    # and the charts are the runner's ratios and fund, step by step
    charts = {chart["label"]: chart for chart in page.context["charts"]}
    timeline = expected["timeline"]
    assert charts["alice margin ratio"]["values"] == [s["margin_ratio"]["alice"] for s in timeline]
    fund = [s["insurance_fund"]["USDT"] for s in timeline]
    assert charts["insurance fund USDT"]["values"] == fund
    assert fund[0] == "100000" and fund[-1] != fund[0]
    assert charts["insurance fund USDT"]["points"].count(",") == len(timeline)
    assert 'aria-label="insurance fund USDT at each step"' in html


def test_an_uploaded_file_runs_and_is_listed(client, manager):
    client.force_login(manager)
    upload = SimpleUploadedFile("crash.json", example_text().encode(), "application/json")
    response = client.post(reverse("desk:scenarios"), {"file": upload})
    (run,) = ScenarioRun.objects.all()
    assert response.status_code == 302 and run.name == "crash.json" and run.exit_status == 0
    listed = client.get(reverse("desk:scenarios")).content.decode()
    assert f'href="{reverse("desk:scenario_detail", args=[run.pk])}"' in listed
    assert "crash.json" in listed


def test_a_pipeline_that_stops_is_saved_with_exit_status_1_and_its_reason(
    client, officer, monkeypatch
):
    def stops(scenario):
        raise ApplicationError("The revaluation tick did not start: locked")

    monkeypatch.setattr("margin.scenarios.runner.scenario_run", stops)
    client.force_login(officer)
    response = client.post(reverse("desk:scenarios"), {"text": example_text()})
    (run,) = ScenarioRun.objects.all()
    assert run.exit_status == 1 and run.output is None
    page = client.get(response["Location"]).content.decode()
    assert "The revaluation tick did not start: locked" in page


def test_only_the_desk_sees_scenarios(client, officer, manager, make_user):
    client.force_login(officer)
    client.post(reverse("desk:scenarios"), {"text": example_text()})
    (run,) = ScenarioRun.objects.all()
    pages = [reverse("desk:scenarios"), reverse("desk:scenario_detail", args=[run.pk])]
    for user in (officer, manager):
        client.force_login(user)
        assert [client.get(url).status_code for url in pages] == [200, 200]
    client.force_login(make_user(TRADER))
    assert [client.get(url).status_code for url in pages] == [403, 403]
    assert client.post(pages[0], {"text": example_text()}).status_code == 403
    client.logout()
    assert all(client.get(url).status_code == 302 for url in pages)
    assert ScenarioRun.objects.count() == 1


def _with(path: list, value) -> str:
    doc = json.loads(example_text())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"accounts": ' + "[" * 40 + "]" * 40 + "}", "nests deeper than 32 levels"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper than 32 levels"),
        (_with(["scenario", "accounts", 0, "name"], "al\x00ice"), "control characters"),
        (example_text().replace('"100000"', "Infinity"), "Infinity is not a number"),
        (example_text().replace('"100000"', "1e400"), "is too large"),
        (
            _with(["scenario", "accounts", 0, "positions", 0, "symbol"], "DOGEUSDT"),
            "unknown symbol",
        ),
        (_with(["scenario", "prices"], []), "prices: must be a non-empty list"),
        ("", "Upload a scenario file or paste one"),
    ],
)
def test_bad_pasted_input_is_a_form_error_and_saves_nothing(client, officer, text, message):
    client.force_login(officer)
    response = client.post(reverse("desk:scenarios"), {"text": text})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ScenarioRun.objects.count() == 0
    assert not AuditEntry.objects.filter(action="scenario.run").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (example_text().encode().replace(b'"alice"', b'"al\x00ice"'), "not JSON"),
        (b"{" + b" " * SCENARIO_MAX_BYTES + b"}", "a scenario is at most 1,048,576 bytes"),
        ('{"x": "é"}'.encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_bad_file_is_a_form_error_and_saves_nothing(client, officer, content, message):
    client.force_login(officer)
    upload = SimpleUploadedFile("bad.json", content, "application/json")
    response = client.post(reverse("desk:scenarios"), {"file": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ScenarioRun.objects.count() == 0


def test_a_raw_nul_in_pasted_text_is_refused_before_the_page(client, officer):
    # the request guard refuses control characters in any form field (400), as on every page
    client.force_login(officer)
    response = client.post(reverse("desk:scenarios"), {"text": example_text() + "\x00"})
    assert response.status_code == 400 and ScenarioRun.objects.count() == 0

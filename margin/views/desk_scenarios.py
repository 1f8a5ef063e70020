"""Risk scenarios from the desk: upload or paste a file in `manage.py run_scenario`'s format,
run it in its sandbox (never the live book), see its events step by step and a chart of each
account's margin ratio and of the insurance fund; every run is saved with its input and
output. Officers and managers only (`desk_required`, as every desk page)."""

from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from accounts.access import desk_required
from margin.forms.desk import ScenarioFileForm
from margin.scenarios.loader import ScenarioError
from margin.scenarios.runner import scenario_outcome
from margin.selectors.desk import scenario_run, scenario_runs
from margin.services.scenario_runs import scenario_run_record
from margin.views.desk_common import sparkline

# What an event row shows besides its step, account and kind.
_EVENT_HEAD = ("at_s", "account", "kind")


def _page(request, form: ScenarioFileForm, status: int = 200):
    runs = Paginator(scenario_runs(), 25).get_page(request.GET.get("page"))
    return render(request, "desk/scenarios.html", {"form": form, "runs": runs}, status=status)


@desk_required
def scenarios(request):
    """The form and the saved runs; a POST runs the scenario and shows the saved run, or the
    form again with what is wrong with the input (400: nothing saved)."""
    if request.method != "POST":
        return _page(request, ScenarioFileForm())
    form = ScenarioFileForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        outcome = scenario_outcome(form.cleaned_data["scenario"])
    except ScenarioError as error:  # found in the sandbox: an unknown symbol, a parameter
        form.add_error(None, f"Not a scenario this runs: {error}")
        return _page(request, form, status=400)
    run = scenario_run_record(
        actor=request.user,
        name=form.cleaned_data["name"],
        input_text=form.cleaned_data["input_text"],
        output=outcome.output,
        exit_status=outcome.exit_status,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    return redirect("desk:scenario_detail", pk=run.pk)


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


def _charts(output: dict) -> list[dict]:
    """One line per account (its margin ratio at each step; none where its margin balance is
    ≤ 0) and one per asset of the insurance fund, from the run's own timeline."""
    timeline = output["timeline"]
    series = {
        f"{name} margin ratio": [step["margin_ratio"].get(name) for step in timeline]
        for name in output["accounts"]
    }
    assets = sorted({asset for step in timeline for asset in step["insurance_fund"]})
    for asset in assets:
        series[f"insurance fund {asset}"] = [step["insurance_fund"].get(asset) for step in timeline]
    return [
        {
            "label": label,
            "values": values,
            "first": values[0] if values else None,
            "last": values[-1] if values else None,
            "points": sparkline([_number(v) for v in values]),
        }
        for label, values in series.items()
    ]


def _steps(output: dict) -> list[dict]:
    """The timeline: each step's time with the events that happened at it, in order."""
    by_time = {step["at_s"]: {"at_s": step["at_s"], "events": []} for step in output["timeline"]}
    for event in output.get("events", []):
        row = {
            "account": event.get("account", ""),
            "kind": event["kind"],
            "detail": [(k, v) for k, v in event.items() if k not in _EVENT_HEAD],
        }
        by_time.setdefault(event["at_s"], {"at_s": event["at_s"], "events": []})
        by_time[event["at_s"]]["events"].append(row)
    return list(by_time.values())


@desk_required
def scenario_detail(request, pk: int):
    run = scenario_run(pk)
    output = run.output  # None when the pipeline stopped: the page shows the error
    return render(
        request,
        "desk/scenario_run.html",
        {
            "run": run,
            "output": output,
            "steps": _steps(output) if output else [],
            "charts": _charts(output) if output else [],
        },
    )

"""Stress tests, cascade simulations (a Celery task with a polled progress bar) and the heat
maps of the book."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import desk_required
from margin.errors import ApplicationError
from margin.forms.desk import CascadeForm, ScenarioForm
from margin.numbers import money_text, percent_text
from margin.selectors.desk import (
    cascade_run,
    cascade_runs,
    exposure_heat_map,
    latest_complete_tick,
    ratio_heat_map,
    stress_runs,
)
from margin.selectors.desk import stress_run as stress_run_of
from margin.services.cascade import cascade_run_start
from margin.services.stress_runs import stress_run_create
from margin.views.desk_common import form_errors, sparkline
from margin.views.rendering import render_page_or_fragment
from margin.vocabulary import CascadeRunStatus

if TYPE_CHECKING:  # annotations only: a view never touches a model itself
    from margin.models import CascadeRun


def _count(value) -> str:
    return f"{value:,.0f}"


def _bars(values: dict[str, float], show: Callable = _count) -> list[dict]:
    """Bars for an inline SVG chart: each value's share of the largest absolute one, and its
    text under the number policy (`show`: a count by default)."""
    top = max((abs(v) for v in values.values()), default=0) or 1
    return [
        {
            "label": label,
            "value": value,
            "text": show(value),
            "width": round(100 * abs(value) / top, 1),
        }
        for label, value in values.items()
    ]


@desk_required
def stress(request):
    runs = Paginator(stress_runs(), 25).get_page(request.GET.get("page"))
    return render(request, "desk/stress.html", {"form": ScenarioForm(), "runs": runs})


@desk_required
@require_POST
def stress_run(request):
    form = ScenarioForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:stress")
    try:
        run = stress_run_create(
            actor=request.user, kind=form.cleaned_data["scenario"], options=form.options()
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("desk:stress")
    return redirect("desk:stress_detail", pk=run.pk)


@desk_required
def stress_detail(request, pk: int):
    run = stress_run_of(pk)
    return render(
        request,
        "desk/stress_run.html",
        {
            "run": run,
            "move_bars": _bars(run.details.get("moves", {}), percent_text),
            "bucket_bars": _bars(run.details.get("ratio_buckets", {})),
            "step_bars": _bars(
                {
                    f"step {n + 1}": s["shortfall"]
                    for n, s in enumerate(run.details.get("steps", []))
                },
                money_text,
            ),
        },
    )


@desk_required
def cascade(request):
    runs = Paginator(cascade_runs(), 25).get_page(request.GET.get("page"))
    return render(request, "desk/cascade.html", {"form": CascadeForm(), "runs": runs})


@desk_required
@require_POST
def cascade_start(request):
    form = CascadeForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:cascade")
    try:
        run = cascade_run_start(
            actor=request.user,
            options={"scenario": form.cleaned_data["scenario"], **form.options()},
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("desk:cascade")
    return redirect("desk:cascade_detail", pk=run.pk)


def _price_paths(run: CascadeRun) -> list[dict]:
    """Each asset that moved: its price after the shock, then after each round's orders, as
    sparkline points."""
    if not run.rounds:
        return []
    paths = []
    for asset, shocked in run.rounds[0]["prices_before"].items():
        prices = [shocked, *(r["prices"][asset] for r in run.rounds)]
        if max(prices) != min(prices):
            paths.append(
                {
                    "asset": asset,
                    "first": prices[0],
                    "last": prices[-1],
                    "points": sparkline(prices),
                }
            )
    return paths


@desk_required
def cascade_detail(request, pk: int):
    """The run's page; htmx polls its progress fragment until the run is done."""
    run = cascade_run(pk)
    return render_page_or_fragment(
        request,
        "desk/cascade_run.html",
        "cascade-progress",
        {
            "run": run,
            "finished": run.status in (CascadeRunStatus.DONE, CascadeRunStatus.FAILED),
            "liquidation_bars": _bars(
                {f"round {r['number']}": r["accounts_liquidated"] for r in run.rounds}
            ),
            "price_paths": _price_paths(run),
        },
    )


@desk_required
def heatmap(request):
    tick = latest_complete_tick()
    tiers, exposure_rows = exposure_heat_map()
    ratio_tiers, ratio_rows = ratio_heat_map(tick) if tick else ([], [])
    return render(
        request,
        "desk/heatmap.html",
        {
            "tiers": tiers,
            "exposure_rows": exposure_rows,
            "ratio_tiers": ratio_tiers,
            "ratio_rows": ratio_rows,
            "tick": tick,
        },
    )

"""Risk parameters on the desk: the version in force, a change with its impact preview, its
proposal; and the public disclosure page (no login)."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import desk_required, proposer_required
from margin.errors import ApplicationError
from margin.forms.desk import ParameterChangeForm
from margin.selectors.funding import dated_futures, funding_outlooks
from margin.selectors.liquidity import EXAMPLE_NOTIONAL, liquidity_disclosure
from margin.selectors.options import live_options, surface_disclosure
from margin.selectors.parameters import disclosed_versions, parameters_in_force, version_terms
from margin.selectors.recalibration import backtest_of, latest_recalibration
from margin.services.parameters import parameter_impact_preview
from margin.services.proposals import parameter_change_propose
from margin.views.desk_common import form_errors


@desk_required
def parameters(request):
    version = parameters_in_force()
    return render(
        request,
        "desk/parameters.html",
        {"version": version, "terms": version_terms(version), "form": ParameterChangeForm()},
    )


@proposer_required
@require_POST
def parameters_preview(request):
    """The impact preview fragment (htmx) of the change in the form."""
    form = ParameterChangeForm(request.POST)
    context = {"form": form}
    if form.is_valid():
        try:
            context["impact"] = parameter_impact_preview(payload=form.payload)
        except ApplicationError as error:
            context["error"] = error.message
    return render(request, "desk/parameters.html#impact-preview", context)


@proposer_required
@require_POST
def parameters_propose(request):
    form = ParameterChangeForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:parameters")
    try:
        proposal = parameter_change_propose(
            payload=form.payload,
            reason=form.cleaned_data["reason"],
            proposer=request.user,
            ttl=form.ttl,
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("desk:parameters")
    return redirect("desk:proposal", pk=proposal.pk)


def disclosure(request):
    """Public: the risk parameters in force and every version before (and after) them."""
    in_force, versions = disclosed_versions()
    recalibration = latest_recalibration()
    return render(
        request,
        "public/disclosure.html",
        {
            "in_force": in_force,
            "markets": liquidity_disclosure(in_force),
            "example_notional": EXAMPLE_NOTIONAL,
            "recalibration": recalibration,
            "backtest": backtest_of(recalibration.impact) if recalibration else None,
            "terms": version_terms(in_force),
            "versions": versions,
            "funding": funding_outlooks(now=timezone.now()).values(),
            "futures": dated_futures(),
            "options": live_options(),
            "surfaces": surface_disclosure(
                [hours / 24 for hours in sorted(settings.OPTION_TERMS_HOURS)], timezone.now()
            ),
        },
    )

"""Four-eyes proposals: the list, one proposal with its impact, approve and reject."""

from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import approver_required, desk_required
from accounts.roles import APPROVE
from margin.forms.desk import DecisionForm
from margin.selectors.desk import proposal_detail
from margin.selectors.desk import proposals as proposals_of
from margin.selectors.recalibration import backtest_of
from margin.services.proposals import proposal_approve, proposal_reject
from margin.views.desk_common import act, form_errors
from margin.vocabulary import ProposalStatus


@desk_required
def proposals(request):
    status = request.GET.get("status", ProposalStatus.PENDING)
    page = Paginator(proposals_of(status), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/proposals.html",
        {"page": page, "status": status, "statuses": ProposalStatus.choices},
    )


@desk_required
def proposal(request, pk: int):
    found = proposal_detail(pk)
    return render(
        request,
        "desk/proposal.html",
        {
            "proposal": found,
            "backtest": backtest_of(found.impact),
            "form": DecisionForm(),
            "may_approve": request.user.has_perm(APPROVE) and request.user.pk != found.proposer_id,
            "may_reject": request.user.has_perm(APPROVE) or request.user.pk == found.proposer_id,
        },
    )


@approver_required
@require_POST
def proposal_approve_view(request, pk: int):
    found = proposal_detail(pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():  # an over-long note must not be dropped and the change carried out
        form_errors(request, form)
        return redirect("desk:proposal", pk=pk)
    return act(
        request,
        lambda: proposal_approve(
            proposal=found, approver=request.user, note=form.cleaned_data["note"]
        ),
        done="Approved and carried out.",
        back="desk:proposal",
        pk=pk,
    )


@desk_required
@require_POST
def proposal_reject_view(request, pk: int):
    found = proposal_detail(pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:proposal", pk=pk)
    return act(
        request,
        lambda: proposal_reject(proposal=found, actor=request.user, note=form.cleaned_data["note"]),
        done="Rejected.",
        back="desk:proposal",
        pk=pk,
    )

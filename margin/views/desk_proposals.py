"""Four-eyes proposals: the list, one proposal with its impact, approve and reject."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import approver_required, desk_required
from accounts.roles import APPROVE
from margin.forms.desk import DecisionForm
from margin.models import Proposal
from margin.services.proposals import proposal_approve, proposal_reject
from margin.views.desk_common import act, form_errors


@desk_required
def proposals(request):
    status = request.GET.get("status", Proposal.Status.PENDING)
    rows = (
        Proposal.objects.filter(status=status)
        .select_related("proposer", "approver", "margin_account")
        .order_by("expires_at" if status == Proposal.Status.PENDING else "-pk")
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/proposals.html",
        {"page": page, "status": status, "statuses": Proposal.Status.choices},
    )


@desk_required
def proposal(request, pk: int):
    found = get_object_or_404(
        Proposal.objects.select_related("proposer", "approver", "margin_account", "case"), pk=pk
    )
    return render(
        request,
        "desk/proposal.html",
        {
            "proposal": found,
            "form": DecisionForm(),
            "may_approve": request.user.has_perm(APPROVE) and request.user.pk != found.proposer_id,
            "may_reject": request.user.has_perm(APPROVE) or request.user.pk == found.proposer_id,
        },
    )


@approver_required
@require_POST
def proposal_approve_view(request, pk: int):
    found = get_object_or_404(Proposal, pk=pk)
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
    found = get_object_or_404(Proposal, pk=pk)
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

"""The desk's queue of at-risk accounts, the account review and case work."""

from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import desk_required, proposer_required
from margin.filters import QueueFilter
from margin.forms.desk import (
    AssignForm,
    CaseOpenForm,
    CloseForm,
    CreditTierForm,
    ForcedReductionForm,
    MarginCallForm,
    MarginSchemeForm,
    NoteForm,
    ReduceOnlyForm,
)
from margin.selectors.desk import (
    account_proposals,
    account_review,
    case_detail,
    case_with_account,
    closed_cases,
    desk_account,
    latest_complete_tick,
    open_case,
    open_case_ids,
    queue_snapshots,
)
from margin.selectors.desk import cases as cases_of
from margin.services import desk as desk_services
from margin.services.proposals import (
    credit_tier_change_propose,
    forced_reduction_propose,
    margin_scheme_change_propose,
)
from margin.views.desk_common import act, form_errors, sparkline
from margin.views.rendering import query_without_page, render_page_or_fragment
from margin.views.risk_matrix import risk_matrices
from margin.vocabulary import CaseStatus

QUEUE_PAGE_SIZE = 50


@desk_required
def queue(request):
    """Accounts of the latest complete revaluation, most at risk first, filtered and paged."""
    tick = latest_complete_tick()
    queue_filter = QueueFilter(request.GET, queryset=queue_snapshots(tick))
    page = Paginator(queue_filter.qs, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    open_cases = open_case_ids(s.account_id for s in page)
    return render_page_or_fragment(
        request,
        "desk/queue.html",
        "queue-table",
        {
            "tick": tick,
            "filter": queue_filter,
            "page": page,
            "rows": [(s, open_cases.get(s.account_id)) for s in page],
            "query": query_without_page(request),
        },
    )


@desk_required
def account(request, pk: int):
    margin_account = desk_account(pk)
    case = open_case(margin_account)
    review = account_review(account=margin_account)
    grid = review.quote.portfolio if review.quote.options else None
    return render(
        request,
        "desk/account.html",
        {
            "review": review,
            "matrices": risk_matrices(grid),
            "ratio_points": sparkline(review.ratio_history),
            "account": margin_account,
            "case": case,
            "past_cases": closed_cases(margin_account),
            "proposals": account_proposals(margin_account),
            "open_form": CaseOpenForm(),
        },
    )


@desk_required
@require_POST
def case_open(request, pk: int):
    margin_account = desk_account(pk)
    form = CaseOpenForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:account", pk=pk)
    return act(
        request,
        lambda: desk_services.case_open(
            account=margin_account, actor=request.user, summary=form.cleaned_data["summary"]
        ),
        done="Case opened.",
        back="desk:account",
        pk=pk,
    )


@desk_required
def cases(request):
    status = request.GET.get("status", CaseStatus.OPEN)
    page = Paginator(cases_of(status), QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "desk/cases.html", {"page": page, "status": status})


@desk_required
def case(request, pk: int):
    found = case_detail(pk)
    return render(
        request,
        "desk/case.html",
        {
            "case": found,
            "account": found.margin_account,
            "notes": found.notes.all(),
            "proposals": found.proposals.all(),
            "forms": {
                "note": NoteForm(),
                "assign": AssignForm(initial={"assignee": found.assignee_id}),
                "close": CloseForm(),
                "margin_call": MarginCallForm(),
                "reduce_only": ReduceOnlyForm(
                    initial={"reduce_only": "0" if found.margin_account.reduce_only else "1"}
                ),
                "reduction": ForcedReductionForm(account=found.margin_account),
                "tier": CreditTierForm(),
                "scheme": MarginSchemeForm(initial={"scheme": found.margin_account.margin_scheme}),
            },
        },
    )


def _case_action(request, pk: int, form_class, do, done: str):
    found = case_with_account(pk)
    form = form_class(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:case", pk=pk)
    return act(request, lambda: do(found, form), done=done, back="desk:case", pk=pk)


@desk_required
@require_POST
def case_note(request, pk: int):
    return _case_action(
        request,
        pk,
        NoteForm,
        lambda c, f: desk_services.case_note_add(
            case=c, actor=request.user, body=f.cleaned_data["body"]
        ),
        "Note added.",
    )


@desk_required
@require_POST
def case_assign(request, pk: int):
    return _case_action(
        request,
        pk,
        AssignForm,
        lambda c, f: desk_services.case_assign(
            case=c, actor=request.user, assignee=f.cleaned_data["assignee"]
        ),
        "Case assigned.",
    )


@desk_required
@require_POST
def case_close(request, pk: int):
    return _case_action(
        request,
        pk,
        CloseForm,
        lambda c, f: desk_services.case_close(
            case=c, actor=request.user, resolution=f.cleaned_data["resolution"]
        ),
        "Case closed.",
    )


@desk_required
@require_POST
def case_margin_call(request, pk: int):
    return _case_action(
        request,
        pk,
        MarginCallForm,
        lambda c, f: desk_services.account_margin_call(
            account=c.margin_account, actor=request.user, message=f.cleaned_data["message"], case=c
        ),
        "Margin call sent to the trader.",
    )


@desk_required
@require_POST
def case_reduce_only(request, pk: int):
    return _case_action(
        request,
        pk,
        ReduceOnlyForm,
        lambda c, f: desk_services.account_reduce_only_set(
            account=c.margin_account,
            actor=request.user,
            reduce_only=f.cleaned_data["reduce_only"],
            reason=f.cleaned_data["reason"],
            case=c,
        ),
        "Restriction updated.",
    )


@proposer_required
@require_POST
def case_propose_reduction(request, pk: int):
    found = case_with_account(pk)
    form = ForcedReductionForm(request.POST, account=found.margin_account)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("desk:case", pk=pk)
    return act(
        request,
        lambda: forced_reduction_propose(
            position=form.cleaned_data["position"],
            quantity=form.cleaned_data["quantity"],
            reason=form.cleaned_data["reason"],
            proposer=request.user,
            case=found,
            ttl=form.ttl,
        ),
        done="Forced reduction proposed: a risk manager must approve it.",
        back="desk:case",
        pk=pk,
    )


@proposer_required
@require_POST
def case_propose_tier(request, pk: int):
    return _case_action(
        request,
        pk,
        CreditTierForm,
        lambda c, f: credit_tier_change_propose(
            account=c.margin_account,
            tier=f.cleaned_data["tier"],
            reason=f.cleaned_data["reason"],
            proposer=request.user,
            case=c,
            ttl=f.ttl,
        ),
        "Credit-tier change proposed: a risk manager must approve it.",
    )


@proposer_required
@require_POST
def case_propose_scheme(request, pk: int):
    return _case_action(
        request,
        pk,
        MarginSchemeForm,
        lambda c, f: margin_scheme_change_propose(
            account=c.margin_account,
            scheme=f.cleaned_data["scheme"],
            reason=f.cleaned_data["reason"],
            proposer=request.user,
            case=c,
            ttl=f.ttl,
        ),
        "Margin-scheme change proposed: a risk manager must approve it.",
    )

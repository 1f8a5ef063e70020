from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from margin.api.problems import problem_response
from margin.api.views import (
    accounts,
    desk,
    docs,
    liquidity,
    me,
    operations,
    options,
    parameters,
    prices,
    quote,
)


@csrf_exempt  # It changes nothing; a CSRF refusal here would answer HTML instead of a problem.
def unknown_path(request, rest: str = ""):
    """Paths under /api/v1/ that match nothing (a malformed id too) answer a problem 404."""
    return problem_response(slug="not-found", status=404, detail="No such resource.")


app_name = "api"
urlpatterns = [
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.SwaggerView.as_view(url_name="api:schema"), name="swagger"),
    path("redoc/", docs.RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("me/", me.MeView.as_view(), name="me"),
    path("quote/", quote.QuoteView.as_view(), name="quote"),
    path("accounts/", accounts.AccountList.as_view(), name="accounts"),
    path("accounts/<int:account_id>/", accounts.AccountDetail.as_view(), name="account"),
    path("accounts/<int:account_id>/deposits/", operations.Deposits.as_view(), name="deposits"),
    path(
        "accounts/<int:account_id>/withdrawals/",
        operations.Withdrawals.as_view(),
        name="withdrawals",
    ),
    path("accounts/<int:account_id>/explain/", accounts.AccountExplain.as_view(), name="explain"),
    path("accounts/<int:account_id>/orders/", operations.Orders.as_view(), name="orders"),
    path("accounts/<int:account_id>/history/", accounts.History.as_view(), name="history"),
    path("accounts/<int:account_id>/positions/", accounts.PositionList.as_view(), name="positions"),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/",
        accounts.PositionDetail.as_view(),
        name="position",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/leverage/",
        operations.Leverage.as_view(),
        name="leverage",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/isolated-margin/",
        operations.IsolatedMargin.as_view(),
        name="isolated-margin",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/margin-mode/",
        operations.MarginMode.as_view(),
        name="margin-mode",
    ),
    path("parameters/", parameters.Parameters.as_view(), name="parameters"),
    path("liquidity/", liquidity.Liquidity.as_view(), name="liquidity"),
    path("recalibration/backtest/", liquidity.Backtest.as_view(), name="backtest"),
    path("stress-events/", liquidity.StressEvents.as_view(), name="stress-events"),
    path(
        "accounts/<int:account_id>/liquidity/",
        liquidity.AccountLiquidity.as_view(),
        name="account-liquidity",
    ),
    path("prices/", prices.Prices.as_view(), name="prices"),
    path("options/chain/", options.OptionChain.as_view(), name="option-chain"),
    path("desk/price-guard-events/", prices.GuardEvents.as_view(), name="desk-guard-events"),
    path("desk/queue/", desk.Queue.as_view(), name="desk-queue"),
    path("desk/greeks/", desk.Greeks.as_view(), name="desk-greeks"),
    path("desk/accounts/<int:account_id>/", desk.DeskAccount.as_view(), name="desk-account"),
    path("desk/accounts/<int:account_id>/cases/", desk.CaseOpen.as_view(), name="desk-case-open"),
    path("desk/cases/", desk.Cases.as_view(), name="desk-cases"),
    path("desk/cases/<int:case_id>/", desk.CaseDetail.as_view(), name="desk-case"),
    path("desk/cases/<int:case_id>/notes/", desk.CaseNote.as_view(), name="desk-case-note"),
    path("desk/cases/<int:case_id>/assign/", desk.CaseAssign.as_view(), name="desk-case-assign"),
    path("desk/cases/<int:case_id>/close/", desk.CaseClose.as_view(), name="desk-case-close"),
    path(
        "desk/cases/<int:case_id>/margin-call/",
        desk.CaseMarginCall.as_view(),
        name="desk-case-margin-call",
    ),
    path(
        "desk/cases/<int:case_id>/reduce-only/",
        desk.CaseReduceOnly.as_view(),
        name="desk-case-reduce-only",
    ),
    path(
        "desk/cases/<int:case_id>/forced-reductions/",
        desk.ForcedReduction.as_view(),
        name="desk-forced-reduction",
    ),
    path(
        "desk/cases/<int:case_id>/credit-tier-changes/",
        desk.CreditTierChange.as_view(),
        name="desk-credit-tier-change",
    ),
    path(
        "desk/cases/<int:case_id>/margin-scheme-changes/",
        desk.MarginSchemeChange.as_view(),
        name="desk-margin-scheme-change",
    ),
    path("desk/proposals/", desk.Proposals.as_view(), name="desk-proposals"),
    path("desk/proposals/<int:proposal_id>/", desk.ProposalDetail.as_view(), name="desk-proposal"),
    path(
        "desk/proposals/<int:proposal_id>/approve/",
        desk.ProposalApprove.as_view(),
        name="desk-proposal-approve",
    ),
    path(
        "desk/proposals/<int:proposal_id>/reject/",
        desk.ProposalReject.as_view(),
        name="desk-proposal-reject",
    ),
    path("desk/parameter-changes/", desk.ParameterChange.as_view(), name="desk-parameter-change"),
    path("desk/stress-runs/", desk.StressRuns.as_view(), name="desk-stress-runs"),
    path("desk/stress-runs/<int:run_id>/", desk.StressRunDetail.as_view(), name="desk-stress-run"),
    path("desk/cascade-runs/", desk.CascadeRuns.as_view(), name="desk-cascade-runs"),
    path(
        "desk/cascade-runs/<int:run_id>/", desk.CascadeRunDetail.as_view(), name="desk-cascade-run"
    ),
    re_path(r"^(?P<rest>.*)$", unknown_path, name="unknown"),
]

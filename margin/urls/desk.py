"""The desk's URLs (namespace `desk`, under /desk/) and the public disclosure page."""

from django.urls import path

from margin.views import (
    desk,
    desk_audit,
    desk_greeks,
    desk_parameters,
    desk_prices,
    desk_proposals,
    desk_scenarios,
    desk_simulations,
)

CASE = "cases/<int:pk>/"

desk_patterns = (
    [
        path("", desk.queue, name="landing"),
        path("accounts/<int:pk>/", desk.account, name="account"),
        path("accounts/<int:pk>/case/", desk.case_open, name="case_open"),
        path("cases/", desk.cases, name="cases"),
        path(CASE, desk.case, name="case"),
        path(f"{CASE}note/", desk.case_note, name="case_note"),
        path(f"{CASE}assign/", desk.case_assign, name="case_assign"),
        path(f"{CASE}close/", desk.case_close, name="case_close"),
        path(f"{CASE}margin-call/", desk.case_margin_call, name="case_margin_call"),
        path(f"{CASE}reduce-only/", desk.case_reduce_only, name="case_reduce_only"),
        path(
            f"{CASE}forced-reduction/", desk.case_propose_reduction, name="case_propose_reduction"
        ),
        path(f"{CASE}credit-tier/", desk.case_propose_tier, name="case_propose_tier"),
        path(f"{CASE}margin-scheme/", desk.case_propose_scheme, name="case_propose_scheme"),
        path("proposals/", desk_proposals.proposals, name="proposals"),
        path("proposals/<int:pk>/", desk_proposals.proposal, name="proposal"),
        path(
            "proposals/<int:pk>/approve/",
            desk_proposals.proposal_approve_view,
            name="proposal_approve",
        ),
        path(
            "proposals/<int:pk>/reject/",
            desk_proposals.proposal_reject_view,
            name="proposal_reject",
        ),
        path("greeks/", desk_greeks.greeks, name="greeks"),
        path("audit/", desk_audit.audit, name="audit"),
        path("audit.csv", desk_audit.audit_csv, name="audit_csv"),
        path("parameters/", desk_parameters.parameters, name="parameters"),
        path("parameters/preview/", desk_parameters.parameters_preview, name="parameters_preview"),
        path("parameters/propose/", desk_parameters.parameters_propose, name="parameters_propose"),
        path("stress/", desk_simulations.stress, name="stress"),
        path("stress/run/", desk_simulations.stress_run, name="stress_run"),
        path("stress/<int:pk>/", desk_simulations.stress_detail, name="stress_detail"),
        path("cascade/", desk_simulations.cascade, name="cascade"),
        path("cascade/start/", desk_simulations.cascade_start, name="cascade_start"),
        path("cascade/<int:pk>/", desk_simulations.cascade_detail, name="cascade_detail"),
        path("heatmap/", desk_simulations.heatmap, name="heatmap"),
        path("scenarios/", desk_scenarios.scenarios, name="scenarios"),
        path("scenarios/<int:pk>/", desk_scenarios.scenario_detail, name="scenario_detail"),
        path("prices/", desk_prices.prices, name="prices"),
    ],
    "desk",
)

public_patterns = [path("disclosure/", desk_parameters.disclosure, name="disclosure")]

"""The risk desk over the API: the at-risk queue, cases and their actions, four-eyes
proposals, stress and cascade runs, parameter changes. The same services and selectors as the
desk's pages; every endpoint refuses a trader (403)."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from margin.api import desk_serializers as d
from margin.api import serializers as s
from margin.api.idempotency import idempotent
from margin.api.permissions import IsApprover, IsDesk, IsProposer
from margin.api.views.base import ApiView
from margin.errors import ApplicationError
from margin.filters import QueueFilter
from margin.selectors.accounts import all_accounts, credit_tier_coded, position_in, user_named
from margin.selectors.desk import (
    cascade_run,
    cascade_runs,
    case_detail,
    case_with_account,
    cases,
    desk_account,
    latest_complete_tick,
    proposal_detail,
    proposals,
    queue_snapshots,
    stress_run,
    stress_runs,
)
from margin.selectors.figures import account_overview
from margin.selectors.greeks import book_greeks
from margin.services import desk as desk_services

if TYPE_CHECKING:  # annotations only: a view never touches a model itself
    from margin.models import Case
from margin.services.cascade import cascade_run_start
from margin.services.parameters import parameter_impact_preview
from margin.services.proposals import (
    credit_tier_change_propose,
    forced_reduction_propose,
    margin_scheme_change_propose,
    parameter_change_propose,
    proposal_approve,
    proposal_reject,
)
from margin.services.stress_runs import stress_run_create


class DeskView(ApiView):
    permission_classes = [IsDesk]


class ApiQueueFilter(QueueFilter):
    """The desk page's queue filters; `asset` is documented as the symbol it takes."""

    asset = extend_schema_field(OpenApiTypes.STR)(copy.deepcopy(QueueFilter.base_filters["asset"]))


class TickPages(PageNumberPagination):
    """Pages of one complete tick: its snapshots never change, so page numbers are stable."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class Queue(DeskView, generics.ListAPIView):
    """Accounts of the latest complete revaluation, most at risk first (or as `order` says)."""

    serializer_class = d.QueueRowSerializer
    pagination_class = TickPages
    filter_backends = [DjangoFilterBackend]
    filterset_class = ApiQueueFilter

    def get_queryset(self):
        if self.describing:
            return queue_snapshots(None)
        return queue_snapshots(latest_complete_tick())

    @extend_schema(summary="The at-risk queue")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class Greeks(DeskView):
    @extend_schema(
        summary="The book's exposure by Greek per underlying",
        responses=d.GreekRowSerializer(many=True),
    )
    def get(self, request):
        return Response(d.GreekRowSerializer(book_greeks(), many=True).data)


class DeskAccount(DeskView):
    @extend_schema(summary="Any account, as its owner sees it", responses=s.AccountDetailSerializer)
    def get(self, request, account_id: int):
        return Response(
            s.AccountDetailSerializer(account_overview(all_accounts(), account_id)).data
        )


class CaseOpen(DeskView):
    @extend_schema(
        summary="Open a case on an account",
        request=d.SummarySerializer,
        responses={201: d.CaseSerializer},
    )
    @idempotent()
    def post(self, request, account_id: int, *, idempotency_key):
        account = desk_account(account_id)
        summary = self.parsed(d.SummarySerializer).validated_data["summary"]
        case = desk_services.case_open(account=account, actor=request.user, summary=summary)
        return Response(d.CaseSerializer(case).data, status=status.HTTP_201_CREATED)


class Cases(DeskView, generics.ListAPIView):
    serializer_class = d.CaseSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["status", "margin_account", "assignee"]

    def get_queryset(self):
        return cases()

    @extend_schema(summary="Cases, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CaseDetail(DeskView):
    @extend_schema(summary="A case with its notes", responses=d.CaseDetailSerializer)
    def get(self, request, case_id: int):
        return Response(d.CaseDetailSerializer(case_detail(case_id)).data)


class CaseAction(DeskView, ABC):
    """One action on a case through the desk service; answers the case as it now stands."""

    input_serializer = None
    answer_serializer = d.CaseSerializer

    @abstractmethod
    def act(self, case: Case, data: dict):
        """Carry the action out through one desk service and return what to answer."""

    @idempotent()
    def post(self, request, case_id: int, *, idempotency_key):
        case = case_with_account(case_id)
        done = self.act(case, self.parsed(self.input_serializer).validated_data)
        return Response(self.answer_serializer(done).data, status=status.HTTP_201_CREATED)


def action_schema(summary: str, request, answer=d.CaseSerializer):
    return extend_schema_view(
        post=extend_schema(summary=summary, request=request, responses={201: answer})
    )


@action_schema("Add a note to a case", d.NoteInputSerializer, d.NoteSerializer)
class CaseNote(CaseAction):
    input_serializer = d.NoteInputSerializer
    answer_serializer = d.NoteSerializer

    def act(self, case, data):
        return desk_services.case_note_add(case=case, actor=self.request.user, body=data["body"])


@action_schema("Assign a case to a desk member", d.AssignSerializer)
class CaseAssign(CaseAction):
    input_serializer = d.AssignSerializer

    def act(self, case, data):
        assignee = user_named(data["assignee"])
        if assignee is None:
            raise ApplicationError("No such user.", {"assignee": "Unknown user."})
        return desk_services.case_assign(case=case, actor=self.request.user, assignee=assignee)


@action_schema("Close a case", d.CloseSerializer)
class CaseClose(CaseAction):
    input_serializer = d.CloseSerializer

    def act(self, case, data):
        return desk_services.case_close(
            case=case, actor=self.request.user, resolution=data["resolution"]
        )


@action_schema("Send the trader a margin call", d.MarginCallSerializer)
class CaseMarginCall(CaseAction):
    input_serializer = d.MarginCallSerializer

    def act(self, case, data):
        desk_services.account_margin_call(
            account=case.margin_account, actor=self.request.user, message=data["message"], case=case
        )
        return case


@action_schema("Restrict the account to reducing, or lift it", d.ReduceOnlySerializer)
class CaseReduceOnly(CaseAction):
    input_serializer = d.ReduceOnlySerializer

    def act(self, case, data):
        desk_services.account_reduce_only_set(
            account=case.margin_account,
            actor=self.request.user,
            reduce_only=data["reduce_only"],
            reason=data["reason"],
            case=case,
        )
        return case


class CaseProposal(CaseAction):
    permission_classes = [IsProposer]
    answer_serializer = d.ProposalSerializer

    def act(self, case, data):
        return self.propose(case, data, d.ttl_of(data))


@action_schema(
    "Propose a forced reduction (a manager approves)",
    d.ForcedReductionSerializer,
    d.ProposalSerializer,
)
class ForcedReduction(CaseProposal):
    input_serializer = d.ForcedReductionSerializer

    def propose(self, case, data, ttl):
        position = position_in(case.margin_account, data["instrument"])
        if position is None:
            raise ApplicationError("No such position.", {"instrument": "No position."})
        return forced_reduction_propose(
            position=position,
            quantity=data["quantity"],
            reason=data["reason"],
            proposer=self.request.user,
            case=case,
            ttl=ttl,
        )


@action_schema(
    "Propose a credit-tier change (a manager approves)",
    d.CreditTierChangeSerializer,
    d.ProposalSerializer,
)
class CreditTierChange(CaseProposal):
    input_serializer = d.CreditTierChangeSerializer

    def propose(self, case, data, ttl):
        tier = credit_tier_coded(data["tier"])
        if tier is None:
            raise ApplicationError("No such credit tier.", {"tier": "Unknown tier."})
        return credit_tier_change_propose(
            account=case.margin_account,
            tier=tier,
            reason=data["reason"],
            proposer=self.request.user,
            case=case,
            ttl=ttl,
        )


@action_schema(
    "Propose a margin scheme for the account: standard or portfolio (a manager approves)",
    d.MarginSchemeChangeSerializer,
    d.ProposalSerializer,
)
class MarginSchemeChange(CaseProposal):
    input_serializer = d.MarginSchemeChangeSerializer

    def propose(self, case, data, ttl):
        return margin_scheme_change_propose(
            account=case.margin_account,
            scheme=data["scheme"],
            reason=data["reason"],
            proposer=self.request.user,
            case=case,
            ttl=ttl,
        )


class Proposals(DeskView, generics.ListAPIView):
    serializer_class = d.ProposalSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["status", "kind", "margin_account"]

    def get_queryset(self):
        return proposals()

    @extend_schema(summary="Four-eyes proposals, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProposalDetail(DeskView):
    @extend_schema(summary="A proposal", responses=d.ProposalSerializer)
    def get(self, request, proposal_id: int):
        return Response(d.ProposalSerializer(proposal_detail(proposal_id)).data)


class ProposalApprove(DeskView):
    permission_classes = [IsApprover]

    @extend_schema(
        summary="Approve and carry out (a manager, not the proposer)",
        request=d.DecisionSerializer,
        responses={201: d.ProposalSerializer},
    )
    @idempotent()
    def post(self, request, proposal_id: int, *, idempotency_key):
        note = self.parsed(d.DecisionSerializer).validated_data["note"]
        done = proposal_approve(
            proposal=proposal_detail(proposal_id), approver=request.user, note=note
        )
        return Response(d.ProposalSerializer(done).data, status=status.HTTP_201_CREATED)


class ProposalReject(DeskView):
    @extend_schema(
        summary="Reject (a manager) or withdraw (the proposer)",
        request=d.DecisionSerializer,
        responses={201: d.ProposalSerializer},
    )
    @idempotent()
    def post(self, request, proposal_id: int, *, idempotency_key):
        note = self.parsed(d.DecisionSerializer).validated_data["note"]
        done = proposal_reject(proposal=proposal_detail(proposal_id), actor=request.user, note=note)
        return Response(d.ProposalSerializer(done).data, status=status.HTTP_201_CREATED)


class ParameterChange(DeskView):
    permission_classes = [IsProposer]

    @extend_schema(
        summary="Propose a risk parameter change, or preview its impact (dry_run)",
        request=d.ParameterChangeSerializer,
        responses={201: d.ProposalSerializer, 200: d.ImpactSerializer},
    )
    @idempotent()
    def post(self, request, *, idempotency_key):
        parsed = self.parsed(d.ParameterChangeSerializer)
        payload = parsed.payload()
        if parsed.validated_data["dry_run"]:
            return Response(d.ImpactSerializer(parameter_impact_preview(payload=payload)).data)
        proposal = parameter_change_propose(
            payload=payload,
            reason=parsed.validated_data["reason"],
            proposer=request.user,
            ttl=d.ttl_of(parsed.validated_data),
        )
        return Response(d.ProposalSerializer(proposal).data, status=status.HTTP_201_CREATED)


class StressRuns(DeskView, generics.ListAPIView):
    serializer_class = d.StressRunSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["scenario"]

    def get_queryset(self):
        return stress_runs()

    @extend_schema(summary="Stress runs, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Run a scenario over the whole book",
        request=d.ScenarioSerializer,
        responses={201: d.StressRunSerializer},
    )
    @idempotent()
    def post(self, request, *, idempotency_key):
        parsed = self.parsed(d.ScenarioSerializer)
        run = stress_run_create(
            actor=request.user, kind=parsed.validated_data["scenario"], options=parsed.options()
        )
        return Response(d.StressRunSerializer(run).data, status=status.HTTP_201_CREATED)


class StressRunDetail(DeskView):
    @extend_schema(summary="A stress run", responses=d.StressRunSerializer)
    def get(self, request, run_id: int):
        run = stress_run(run_id)
        return Response(d.StressRunSerializer(run).data)


class CascadeRuns(DeskView, generics.ListAPIView):
    serializer_class = d.CascadeRunSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["status"]

    def get_queryset(self):
        return cascade_runs()

    @extend_schema(summary="Cascade runs, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Queue a liquidation-cascade simulation (poll it until done)",
        request=d.CascadeInputSerializer,
        responses={201: d.CascadeRunSerializer},
    )
    @idempotent()
    def post(self, request, *, idempotency_key):
        parsed = self.parsed(d.CascadeInputSerializer)
        options = {"scenario": parsed.validated_data["scenario"], **parsed.options()}
        run = cascade_run_start(actor=request.user, options=options)
        return Response(d.CascadeRunSerializer(run).data, status=status.HTTP_201_CREATED)


class CascadeRunDetail(DeskView):
    @extend_schema(summary="A cascade run and its progress", responses=d.CascadeRunSerializer)
    def get(self, request, run_id: int):
        run = cascade_run(run_id)
        return Response(d.CascadeRunSerializer(run).data)

"""A trader's own accounts: reads through `margin.selectors`, writes through the services.

Every object is looked up among the caller's own (`account_of_user_or_404`): another user's
account is a 404, exactly like one that does not exist.
"""

from dataclasses import replace
from decimal import Decimal

from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from margin.api import serializers as s
from margin.api.filters import AccountFilter, HistoryFilter, PositionFilter
from margin.api.pagination import OldestFirst
from margin.api.permissions import IsTrader
from margin.api.quote_schema import QUOTE_ANSWER
from margin.api.views.base import ApiView
from margin.engine.explain import explain_account
from margin.engine.reference import quote_account
from margin.engine.request import render_quote
from margin.models import (
    Entry,
    FundingPayment,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    Position,
)
from margin.selectors.accounts import (
    account_of_user_or_404,
    account_quote,
    account_state_load,
    accounts_of,
)
from margin.selectors.ledger import ledger_history
from margin.selectors.market import with_latest_snapshot_ids, with_latest_snapshots


def _own_accounts(user):
    return with_latest_snapshot_ids(accounts_of(user))


def account_detail(accounts, account_id: int) -> dict:
    """Account `account_id` among `accounts` (else 404): balances, figures now, latest
    revaluation."""
    account = get_object_or_404(with_latest_snapshot_ids(accounts), pk=account_id)
    (account,) = with_latest_snapshots([account])
    account.wallets = [
        {"asset": asset, "balance": balance}
        for asset, balance in LedgerAccount.objects.filter(
            margin_account=account, kind=LedgerAccountKind.WALLET
        )
        .order_by("asset__symbol")
        .values_list("asset__symbol", "balance")
    ]
    account.figures = account_quote(account)
    return s.AccountDetailSerializer(account).data


class TraderView(ApiView):
    permission_classes = [IsTrader]

    def account(self):
        return account_of_user_or_404(self.request.user, self.kwargs["account_id"])


class AccountList(TraderView, generics.ListAPIView):
    serializer_class = s.AccountSerializer
    pagination_class = OldestFirst
    filter_backends = [DjangoFilterBackend]
    filterset_class = AccountFilter

    def get_queryset(self):
        if self.describing:
            return MarginAccount.objects.none()
        return _own_accounts(self.request.user)

    @extend_schema(summary="Your margin accounts, each with its latest revaluation")
    def get(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = with_latest_snapshots(self.paginate_queryset(queryset))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AccountDetail(TraderView):
    @extend_schema(
        summary="One of your accounts: balances, figures now, latest revaluation",
        responses=s.AccountDetailSerializer,
    )
    def get(self, request, account_id: int):
        return Response(account_detail(accounts_of(request.user), account_id))


def _positions_of(account):
    fenced = LedgerAccount.objects.filter(
        position=OuterRef("pk"), kind=LedgerAccountKind.ISOLATED
    ).values("balance")[:1]
    funding = (
        FundingPayment.objects.filter(position=OuterRef("pk"))
        .values("position")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Position.objects.filter(margin_account=account)
        .select_related("instrument")
        .annotate(
            isolated_margin=Subquery(fenced),
            cumulative_funding=Coalesce(Subquery(funding), Value(Decimal(0))),
        )
    )


class PositionList(TraderView, generics.ListAPIView):
    serializer_class = s.PositionSerializer
    pagination_class = OldestFirst
    filter_backends = [DjangoFilterBackend]
    filterset_class = PositionFilter

    def get_queryset(self):
        if self.describing:
            return Position.objects.none()
        return _positions_of(self.account())

    @extend_schema(summary="The positions of one of your accounts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PositionDetail(TraderView):
    @extend_schema(summary="Your position in one instrument", responses=s.PositionSerializer)
    def get(self, request, account_id: int, instrument: str):
        position = get_object_or_404(_positions_of(self.account()), instrument__symbol=instrument)
        return Response(s.PositionSerializer(position).data)


class History(TraderView, generics.ListAPIView):
    """Ledger entries, newest first: deposits, withdrawals, fills, fees, funding, liquidations."""

    serializer_class = s.HistoryEntrySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = HistoryFilter

    def get_queryset(self):
        if self.describing:
            return Entry.objects.none()
        return ledger_history(account=self.account())

    def filter_queryset(self, queryset):
        # The selector applies the filters; the FilterSet only parses and checks them.
        checked = HistoryFilter(self.request.query_params, queryset=queryset)
        if not checked.is_valid():
            raise ValidationError(checked.errors)
        return ledger_history(account=self.account(), filters=checked.form.cleaned_data)

    @extend_schema(summary="The ledger history of one of your accounts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AccountExplain(TraderView):
    """Where each figure of the account comes from, at current marks (the quote format).

    Positions are named by their instrument here (`positions.BTCUSDT.maintenance_margin`):
    the engine's step text takes position ids as format names, and a bare number (the
    database id) is read there as a positional field.
    """

    @extend_schema(
        summary="Your account's figures now, each with its steps",
        responses={200: QUOTE_ANSWER},
    )
    def get(self, request, account_id: int):
        state = account_state_load(self.account())
        symbols = {p.engine_id: p.instrument for p in state.positions.values()}
        engine_input = state.engine_input()
        engine_input = replace(
            engine_input,
            positions=tuple(
                replace(position, id=symbols[position.id]) for position in engine_input.positions
            ),
        )
        quote = quote_account(engine_input)
        return Response(render_quote(quote, explain_account(engine_input, quote)))

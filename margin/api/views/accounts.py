"""A trader's own accounts: reads through `margin.selectors`, writes through the services.

Every object is looked up among the caller's own (`account_of_user_or_404`): another user's
account is a 404, exactly like one that does not exist.
"""

from dataclasses import replace

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
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
from margin.selectors.accounts import (
    account_of_user_or_404,
    accounts_of,
    positions_of,
)
from margin.selectors.figures import account_overview, figures_now
from margin.selectors.ledger import ledger_history
from margin.selectors.market import with_latest_snapshot_ids, with_latest_snapshots


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
        user = None if self.describing else self.request.user
        return with_latest_snapshot_ids(accounts_of(user))

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
        account = account_overview(accounts_of(request.user), account_id)
        return Response(s.AccountDetailSerializer(account).data)


class PositionList(TraderView, generics.ListAPIView):
    serializer_class = s.PositionSerializer
    pagination_class = OldestFirst
    filter_backends = [DjangoFilterBackend]
    filterset_class = PositionFilter

    def get_queryset(self):
        return positions_of(None if self.describing else self.account())

    @extend_schema(summary="The positions of one of your accounts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


OPTION_POSITION_EXAMPLE = {
    "id": 42,
    "instrument": "BTC-04DEC26-2000-98000-C",
    "kind": "option",
    "side": "long",
    "quantity": "0.500000000000000000",
    "entry_price": "1450.250000000000000000",
    "leverage": "1.00",
    "margin_mode": "cross",
    "isolated_margin": None,
    "realized_pnl": "0.000000000000000000",
    "cumulative_funding": "0.000000000000000000",
    "funding": None,
    "option": {
        "underlying": "BTC",
        "option_type": "call",
        "strike": "98000.000000000000000000",
        "expiry": "2026-12-04T20:00:00Z",
        "premium": "1450.250000000000000000",
        "premium_paid": "725.125000000000000000",
        "forward": "96210.500000000000000000",
        "implied_vol": "0.540000000000000000",
        "expiry_days": "6.950000000000000000",
        "mark": "1391.733291004511286950",
        "unrealized_pnl": "-29.258354497744356525",
        "delta": "0.410566702180919866",
        "gamma": "0.000057384911706120",
        "vega": "39.475216151917730121",
        "theta": "-109.247137306373170744",
        "position_delta": "0.205283351090459933",
    },
    "opened_at": "2026-12-04T18:00:00Z",
    "updated_at": "2026-12-04T18:00:00Z",
    "display": {"quantity": "0.5", "entry_price": "1,450.25"},
}


class PositionDetail(TraderView):
    @extend_schema(
        summary="Your position in one instrument",
        responses=s.PositionSerializer,
        examples=[OpenApiExample("A long call", value=OPTION_POSITION_EXAMPLE, response_only=True)],
    )
    def get(self, request, account_id: int, instrument: str):
        position = get_object_or_404(positions_of(self.account()), instrument__symbol=instrument)
        return Response(s.PositionSerializer(position).data)


class History(TraderView, generics.ListAPIView):
    """Ledger entries, newest first: deposits, withdrawals, fills, fees, funding, liquidations."""

    serializer_class = s.HistoryEntrySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = HistoryFilter

    def get_queryset(self):
        return ledger_history(account=None if self.describing else self.account())

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

    Positions and options are named by their instrument here
    (`positions.BTCUSDT.maintenance_margin`, `positions.BTC-…-C.mark_price`): the engine's
    step text takes position ids as format names, and a bare number (the database id) is read
    there as a positional field. An option's mark and each Greek come with Black-76's inputs;
    on the portfolio grid `grid.<underlying>.scan_risk` lists the 24 scenarios with each
    position's P&L, `grid.<underlying>.min_delta_risk` the delta floor.
    """

    @extend_schema(
        summary="Your account's figures now, each with its steps",
        responses={200: QUOTE_ANSWER},
    )
    def get(self, request, account_id: int):
        state = figures_now(self.account()).state
        symbols = {p.engine_id: p.instrument for p in state.positions.values()}
        engine_input = state.engine_input()
        engine_input = replace(
            engine_input,
            positions=tuple(
                replace(position, id=symbols[position.id]) for position in engine_input.positions
            ),
            options=tuple(
                replace(option, id=symbols[option.id]) for option in engine_input.options
            ),
        )
        quote = quote_account(engine_input)
        return Response(render_quote(quote, explain_account(engine_input, quote)))

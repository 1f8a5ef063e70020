"""Prices over the API: every index and mark now, each with whether it is stale or uncertain
(and why); and, for the desk, the quotes the price guard did not count as printed."""

from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from margin.api import serializers as s
from margin.api.permissions import IsDesk
from margin.api.views.base import ApiView
from margin.selectors.market import guard_events, index_prices, mark_prices
from margin.selectors.parameters import parameters_in_force


class Prices(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Every index and mark now; an uncertain or stale one is not liquidated on",
        responses=s.PricesSerializer,
    )
    def get(self, request):
        now = timezone.now()
        max_age_s = parameters_in_force(now).price_guard_max_age_s
        answer = {
            "indexes": index_prices(now=now, max_age_s=max_age_s),
            "marks": mark_prices(now=now, max_age_s=max_age_s),
        }
        return Response(s.PricesSerializer(answer).data)


class GuardEvents(ApiView, generics.ListAPIView):
    permission_classes = [IsDesk]
    serializer_class = s.GuardEventSerializer
    queryset = guard_events()
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["symbol", "source", "reason", "kind"]

    @extend_schema(summary="Quotes the price guard did not count as printed, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

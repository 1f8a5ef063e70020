"""The options chain over the API: strikes × expiries per underlying with bid / mark / ask, IV
and Greeks (the trader's options page's chain). Market data: any signed-in user reads it."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from margin.api import serializers as s
from margin.api.views.base import ApiView
from margin.selectors.options import option_chain

CHAIN_EXAMPLE = [
    {
        "underlying": "BTC",
        "expiry": "2026-12-04T20:00:00Z",
        "days": 2.0,
        "forward": "95000.000000000000000000",
        "strikes": [
            {
                "strike": "95000.000000000000000000",
                "call": {
                    "symbol": "BTC-04DEC26-2000-95000-C",
                    "bid": 1820.4,
                    "mark": "1872.310000000000000000",
                    "ask": 1924.2,
                    "implied_vol": "0.520000000000000000",
                    "delta": 0.5101,
                    "gamma": 0.000107,
                    "vega": 51.93,
                    "theta": -467.8,
                },
                "put": None,
            }
        ],
    }
]


class OptionChain(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The options chain: strikes × expiries with bid / mark / ask, IV and Greeks",
        parameters=[s.ChainFilterSerializer],
        responses=s.ChainExpirySerializer(many=True),
        examples=[OpenApiExample("BTC, one strike", value=CHAIN_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        wanted = s.ChainFilterSerializer(data=request.query_params)
        wanted.is_valid(raise_exception=True)
        underlying = wanted.validated_data.get("underlying")
        expiry = wanted.validated_data.get("expiry")
        chain = [
            term
            for term in option_chain(now=timezone.now())
            if (underlying is None or term.underlying == underlying)
            and (expiry is None or term.expiry == expiry)
        ]
        return Response(s.ChainExpirySerializer(chain, many=True).data)

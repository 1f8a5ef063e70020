from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from margin.api.idempotency import idempotent
from margin.api.quote_schema import QUOTE_ANSWER, QUOTE_REQUEST
from margin.engine.explain import explain_account
from margin.engine.reference import quote_account
from margin.engine.request import parse_quote_request, render_quote

EXAMPLE_REQUEST = {
    "account": {
        "collateral": [
            {
                "asset": "BTC",
                "quantity": "2.5",
                "price": "64000",
                "haircut_tiers": [{"floor": "0", "ratio": "0.95"}],
            }
        ],
        "positions": [
            {
                "id": "BTCUSDT",
                "side": "long",
                "quantity": "0.8",
                "entry_price": "61000",
                "mark_price": "64000",
                "leverage": "10",
                "brackets": [
                    {"floor": "0", "mmr": "0.004", "max_leverage": "125"},
                    {"floor": "50000", "mmr": "0.005", "max_leverage": "100"},
                ],
            }
        ],
    }
}


class QuoteQuery(serializers.Serializer):
    explain = serializers.BooleanField(
        default=False, help_text="Add every figure's steps under `explain`."
    )


class QuoteView(APIView):
    """The engine's stateless quote: the command line's JSON in, its JSON answer out."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Quote a hypothetical account (the engine's command-line format)",
        parameters=[QuoteQuery],
        request={"application/json": QUOTE_REQUEST},
        responses={200: QUOTE_ANSWER},
        examples=[OpenApiExample("BTC long", value=EXAMPLE_REQUEST, request_only=True)],
    )
    @idempotent(required=False)
    def post(self, request, *, idempotency_key):
        query = QuoteQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        account = parse_quote_request(request.data)
        quote = quote_account(account)
        steps = explain_account(account, quote) if query.validated_data["explain"] else None
        return Response(render_quote(quote, steps))

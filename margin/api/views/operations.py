"""A trader's writes: deposit, withdraw, order (fill at the mark), leverage, isolated margin,
margin mode. Each is the page's service call: `dry_run` asks its preview, anything else books
once per Idempotency-Key (the service itself also refuses to book a key twice)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from margin.api import serializers as s
from margin.api.idempotency import idempotent
from margin.api.views.accounts import TraderView
from margin.services import collateral, margin_mode, positions
from margin.services.writes import Write


class WriteView(TraderView):
    """Parse with `input_serializer`, then preview or book through the service's write."""

    input_serializer: type[s.WriteSerializer]
    write: Write

    def arguments(self, data: dict) -> dict:
        return data

    def write_for(self, data: dict) -> Write:
        """The write of this request (one of two for isolated margin); takes out of `data`
        what only chose it."""
        return self.write

    @idempotent()
    def post(self, request, *, idempotency_key, **kwargs):
        account = self.account()
        data = dict(self.parsed(self.input_serializer).validated_data)
        dry_run = data.pop("dry_run")
        fingerprint = data.pop("expected_fingerprint", None)
        write = self.write_for(data)
        arguments = self.arguments(data)
        if dry_run:
            preview = write.preview(account=account, **arguments)
            return Response(s.PreviewSerializer(preview).data)
        receipt = write.submit(
            account=account,
            idempotency_key=idempotency_key,
            expected_fingerprint=fingerprint,
            actor=request.user,
            **arguments,
        )
        return Response(s.ReceiptSerializer(receipt.as_json()).data, status=status.HTTP_201_CREATED)


def write_schema(summary: str, serializer) -> type:
    return extend_schema_view(
        post=extend_schema(
            summary=summary,
            request=serializer,
            responses={201: s.ReceiptSerializer, 200: s.PreviewSerializer},
        )
    )


@write_schema("Deposit collateral into the cross wallet", s.TransferSerializer)
class Deposits(WriteView):
    """Credit collateral from outside to the account's cross wallet."""

    input_serializer = s.TransferSerializer
    write = collateral.collateral_deposit


@write_schema("Withdraw collateral (up to the withdrawable)", s.TransferSerializer)
class Withdrawals(WriteView):
    """Send collateral out, never more than the withdrawable nor the wallet holds."""

    input_serializer = s.TransferSerializer
    write = collateral.collateral_withdraw


@write_schema(
    "Trade at the mark: open, increase, reduce, close or flip a position", s.OrderSerializer
)
class Orders(WriteView):
    """A simulated market fill at the current mark plus the taker fee."""

    input_serializer = s.OrderSerializer
    write = positions.position_market_fill


class PositionWriteView(WriteView):
    """The instrument comes from the path (a flat instrument may be set up before trading)."""

    def arguments(self, data: dict) -> dict:
        return {**data, "instrument": self.kwargs["instrument"]}


@write_schema("Set the leverage of a position", s.LeverageSerializer)
class Leverage(PositionWriteView):
    """The leverage sets the initial margin; at most the bracket's maximum."""

    input_serializer = s.LeverageSerializer
    write = margin_mode.position_leverage_set


@write_schema("Add margin to, or remove it from, an isolated position", s.IsolatedMarginSerializer)
class IsolatedMargin(PositionWriteView):
    """Move settlement-asset margin into or out of an isolated position."""

    input_serializer = s.IsolatedMarginSerializer

    def write_for(self, data: dict) -> Write:
        adding = data.pop("action") == "add"
        return margin_mode.isolated_margin_add if adding else margin_mode.isolated_margin_remove


@write_schema("Switch a position between cross and isolated margin", s.MarginModeSerializer)
class MarginMode(PositionWriteView):
    """To isolated fences `isolated_margin` from the cross wallet; to cross releases it."""

    input_serializer = s.MarginModeSerializer
    write = margin_mode.position_margin_mode_switch

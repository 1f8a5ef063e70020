"""Liquidity and recalibration over the API: each market's published depth and charge (public,
like `/disclosure/`), an account's add-ons, liquidity haircuts and concentration, and the
latest recalibration's backtest (public)."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from margin.api.views.accounts import TraderView
from margin.api.views.base import ApiView
from margin.engine.events import stress_events
from margin.engine.liquidity import concentration_share
from margin.engine.reference import liquidity_keep
from margin.selectors.accounts import account_state_load
from margin.selectors.liquidity import (
    EXAMPLE_NOTIONAL,
    concentrated_instruments,
    liquidity_disclosure,
)
from margin.selectors.parameters import parameters_in_force
from margin.selectors.recalibration import backtest_of, latest_recalibration

MONEY = {"max_digits": 40, "decimal_places": 8, "coerce_to_string": True}
RATIO = {"max_digits": 40, "decimal_places": 12, "coerce_to_string": True}


class MarketSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    kind = serializers.ChoiceField(choices=["instrument", "asset"])
    depth_per_day = serializers.DecimalField(**MONEY, help_text="USD traded per day.")
    depth = serializers.DecimalField(**MONEY, help_text="USD over the close-out horizon.")
    volatility = serializers.DecimalField(**RATIO, help_text="σ over the close-out horizon.")
    coefficient = serializers.DecimalField(**RATIO, help_text="Y of the square-root law.")
    example_charge = serializers.DecimalField(
        **MONEY, help_text="Add-on (instrument) or haircut (asset) on the example notional, USD."
    )


class LiquiditySerializer(serializers.Serializer):
    parameter_version = serializers.IntegerField()
    horizon_days = serializers.DecimalField(**RATIO)
    concentration_limit_share = serializers.DecimalField(**RATIO)
    concentration_floor_usd = serializers.DecimalField(**MONEY)
    example_notional = serializers.DecimalField(**MONEY)
    markets = MarketSerializer(many=True)


class Liquidity(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Each market's published depth and liquidity charge (public)",
        responses=LiquiditySerializer,
    )
    def get(self, request):
        version = parameters_in_force()
        markets = [
            {
                "symbol": row.symbol,
                "kind": row.kind,
                "depth_per_day": row.depth_per_day,
                "depth": row.market.depth,
                "volatility": row.market.volatility,
                "coefficient": row.market.coefficient,
                "example_charge": row.example_charge,
            }
            for row in liquidity_disclosure(version)
        ]
        answer = {
            "parameter_version": version.number,
            "horizon_days": version.stress_horizon_days,
            "concentration_limit_share": version.concentration_limit_share,
            "concentration_floor_usd": version.concentration_floor_usd,
            "example_notional": EXAMPLE_NOTIONAL,
            "markets": markets,
        }
        return Response(LiquiditySerializer(answer).data)


class PositionAddOnSerializer(serializers.Serializer):
    instrument = serializers.CharField()
    notional = serializers.DecimalField(**MONEY)
    owner_quantity = serializers.DecimalField(
        **MONEY, help_text="What the owner holds of it over all their accounts, long and short."
    )
    liquidity_addon = serializers.DecimalField(**MONEY, help_text="Part of MM and IM, USD.")
    owner_notional = serializers.DecimalField(
        **MONEY, help_text="The owner's quantity at the mark, USD: it picks the bracket."
    )
    bracket = serializers.IntegerField(help_text="The bracket of the owner's notional.")
    owner_share = serializers.DecimalField(
        **RATIO, help_text="This position's share of the owner's quantity and of their MM."
    )


class CollateralHaircutSerializer(serializers.Serializer):
    asset = serializers.CharField()
    quantity = serializers.DecimalField(**MONEY)
    owner_quantity = serializers.DecimalField(**MONEY)
    liquidity_haircut = serializers.DecimalField(**RATIO, help_text="Share of the tiered value.")


class ConcentrationSerializer(serializers.Serializer):
    instrument = serializers.CharField()
    owner_notional = serializers.DecimalField(**MONEY)
    open_interest = serializers.DecimalField(**MONEY)
    share = serializers.DecimalField(**RATIO)


class AccountLiquiditySerializer(serializers.Serializer):
    positions = PositionAddOnSerializer(many=True)
    collateral = CollateralHaircutSerializer(many=True)
    reduce_only_instruments = ConcentrationSerializer(
        many=True, help_text="Above the published share of open interest: only reductions."
    )


class AccountLiquidity(TraderView):
    @extend_schema(
        summary=(
            "Your account's liquidity add-ons, haircuts, owner's brackets and concentration "
            "limits now"
        ),
        responses=AccountLiquiditySerializer,
    )
    def get(self, request, account_id: int):
        state = account_state_load(self.account())
        engine_input = state.engine_input().in_settlement_coin()
        quote = state.quote()
        symbols = {p.engine_id: p.instrument for p in state.positions.values()}
        positions = [
            {
                "instrument": symbols[position.id],
                "notional": row.notional,
                "owner_quantity": position.owner_quantity or position.quantity,
                "liquidity_addon": row.liquidity_addon,
                "owner_notional": row.owner_notional,
                "bracket": row.bracket,
                "owner_share": row.owner_share,
            }
            for position, row in zip(engine_input.positions, quote.positions, strict=True)
        ]
        collateral = [
            {
                "asset": line.asset,
                "quantity": line.quantity,
                "owner_quantity": line.owner_quantity or max(line.quantity, 0),
                "liquidity_haircut": 1 - liquidity_keep(line),
            }
            for line in engine_input.collateral
        ]
        floor = state.terms.concentration_floor_usd
        concentrated = [
            {
                "instrument": symbol,
                "owner_notional": owner,
                "open_interest": total,
                "share": concentration_share(owner, total, floor),
            }
            for symbol, (owner, total) in sorted(
                concentrated_instruments(state.owner_id, state.terms, state.marks).items()
            )
        ]
        answer = {
            "positions": positions,
            "collateral": collateral,
            "reduce_only_instruments": concentrated,
        }
        return Response(AccountLiquiditySerializer(answer).data)


class BacktestSideSerializer(serializers.Serializer):
    rate = serializers.CharField()
    observations = serializers.IntegerField()
    exceedances = serializers.IntegerField()
    coverage = serializers.FloatField()
    kupiec_p_value = serializers.FloatField(allow_null=True)
    passes = serializers.BooleanField()


class BacktestRowSerializer(serializers.Serializer):
    instrument = serializers.CharField()
    current = BacktestSideSerializer(allow_null=True)
    proposed = BacktestSideSerializer(allow_null=True)


class BacktestSerializer(serializers.Serializer):
    proposal = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    confidence = serializers.FloatField()
    horizon_s = serializers.FloatField()
    rows = BacktestRowSerializer(many=True)


class Backtest(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The latest recalibration's backtest of margin coverage (public)",
        responses={200: BacktestSerializer, 404: None},
    )
    def get(self, request):
        proposal = latest_recalibration()
        backtest = backtest_of(proposal.impact) if proposal else None
        if backtest is None:
            raise NotFound("No recalibration has run yet.")
        answer = asdict(backtest) | {
            "proposal": proposal.pk,
            "status": proposal.status,
            "created_at": proposal.created_at,
        }
        return Response(BacktestSerializer(answer).data)


class DepegSerializer(serializers.Serializer):
    peg = serializers.CharField(help_text="USD, or the asset the token is pegged to.")
    fractions = serializers.DictField(
        child=serializers.FloatField(), help_text="By point: the fraction of its peg it traded at."
    )


class StressEventSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    source = serializers.CharField()
    dates = serializers.ListField(
        child=serializers.CharField(), help_text="UTC dates (closes) or times (intraday prints)."
    )
    closes = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Per asset, its price at each point; null: no cited price, the last holds.",
    )
    depegs = serializers.DictField(child=DepegSerializer())
    worst_move = serializers.FloatField(help_text="Deepest fall from the first point.")


class StressEvents(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The library of real stress events (public); run one over the book with "
        "POST /desk/stress-runs/ {scenario: event, event: name}",
        responses=StressEventSerializer(many=True),
    )
    def get(self, request):
        rows = [
            asdict(event) | {"worst_move": event.worst_move()} for event in stress_events().values()
        ]
        return Response(StressEventSerializer(rows, many=True).data)

"""Request and answer shapes of the trader endpoints. Inputs are only parsed here: the rules
(assets, limits, margin) are the services', which answer with ApplicationError."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from margin.api import display
from margin.api.display import DisplayField
from margin.api.quote_schema import QUOTE_ANSWER
from margin.engine.request import render_quote
from margin.models import (
    AccountState,
    AssetPrice,
    Entry,
    GuardRejection,
    JournalKind,
    MarginAccount,
    MarginMode,
    MarginSnapshot,
    MarkPrice,
    Position,
)
from margin.selectors.funding import funding_outlooks

AMOUNT = {"max_digits": 38, "decimal_places": 18}


@extend_schema_field(QUOTE_ANSWER)
class QuoteField(serializers.Field):
    """An engine AccountQuote in the quote endpoint's JSON format."""

    def to_representation(self, value):
        return render_quote(value)


class SnapshotSerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="tick.started_at")
    display = DisplayField(display.SNAPSHOT)
    age_s = serializers.FloatField(read_only=True, help_text="Seconds since its revaluation.")
    is_stale = serializers.BooleanField(
        read_only=True,
        help_text="Older than the stale limit, or revalued on stale prices: do not trade on it.",
    )

    class Meta:
        model = MarginSnapshot
        fields = [
            "at",
            "collateral_value",
            "unrealized_pnl",
            "margin_balance",
            "maintenance_margin",
            "initial_margin",
            "margin_ratio",
            "withdrawable",
            "stress_margin",
            "state",
            "age_s",
            "is_stale",
            "display",
        ]


class AccountSerializer(serializers.ModelSerializer):
    credit_tier = serializers.SlugRelatedField(slug_field="code", read_only=True)
    latest_snapshot = SnapshotSerializer(allow_null=True, read_only=True)

    class Meta:
        model = MarginAccount
        fields = [
            "id",
            "name",
            "credit_tier",
            "margin_scheme",
            "state",
            "reduce_only",
            "created_at",
            "state_changed_at",
            "latest_snapshot",
        ]


class WalletSerializer(serializers.Serializer):
    asset = serializers.CharField()
    balance = serializers.DecimalField(**AMOUNT)


class AccountDetailSerializer(AccountSerializer):
    wallets = WalletSerializer(many=True, read_only=True)
    figures = QuoteField(read_only=True, help_text="The engine's figures now, at current marks.")

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "wallets", "figures"]


class FundingSerializer(serializers.Serializer):
    """A perpetual's funding: a positive rate makes longs pay shorts (Binance USD-M)."""

    next_funding_time = serializers.DateTimeField()
    predicted_rate = serializers.DecimalField(max_digits=20, decimal_places=12)
    last_rate = serializers.DecimalField(max_digits=20, decimal_places=12, allow_null=True)
    last_funding_time = serializers.DateTimeField(allow_null=True)
    interval_hours = serializers.IntegerField(help_text="Hours of market time between fundings.")


class PositionSerializer(serializers.ModelSerializer):
    instrument = serializers.SlugRelatedField(slug_field="symbol", read_only=True)
    side = serializers.ChoiceField(choices=["long", "short", "flat"], read_only=True)
    isolated_margin = serializers.DecimalField(**AMOUNT, allow_null=True, read_only=True)
    cumulative_funding = serializers.DecimalField(
        **AMOUNT, read_only=True, help_text="Funding received (+) or paid (−) so far."
    )
    funding = serializers.SerializerMethodField()
    display = DisplayField(display.POSITION)

    @extend_schema_field(FundingSerializer(allow_null=True))
    def get_funding(self, position) -> dict | None:
        """The perpetual's next funding time and predicted rate; null for a dated future."""
        root = self.root
        if not hasattr(root, "_funding_outlooks"):
            root._funding_outlooks = funding_outlooks(now=timezone.now())
        outlook = root._funding_outlooks.get(position.instrument.symbol)
        if outlook is None:
            return None
        return FundingSerializer(
            {
                "next_funding_time": outlook.next_funding_time,
                "predicted_rate": outlook.predicted_rate,
                "last_rate": outlook.last_rate,
                "last_funding_time": outlook.last_funding_time,
                "interval_hours": outlook.interval_hours,
            }
        ).data

    class Meta:
        model = Position
        fields = [
            "id",
            "instrument",
            "side",
            "quantity",
            "entry_price",
            "leverage",
            "margin_mode",
            "isolated_margin",
            "realized_pnl",
            "cumulative_funding",
            "funding",
            "opened_at",
            "updated_at",
            "display",
        ]


class HistoryEntrySerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="journal.created_at")
    kind = serializers.ChoiceField(source="journal.kind", choices=JournalKind.choices)
    journal_id = serializers.IntegerField()
    asset = serializers.SlugRelatedField(slug_field="symbol", read_only=True)
    ledger = serializers.CharField(source="ledger_account.kind")
    instrument = serializers.CharField(
        source="ledger_account.position.instrument.symbol", allow_null=True, default=None
    )
    memo = serializers.CharField(source="journal.memo")

    class Meta:
        model = Entry
        fields = [
            "id",
            "at",
            "kind",
            "journal_id",
            "asset",
            "amount",
            "ledger",
            "instrument",
            "memo",
        ]


class ReceiptSerializer(serializers.Serializer):
    """What a booked write did; the same key replays it."""

    operation = serializers.CharField()
    margin_account_id = serializers.IntegerField()
    journal_id = serializers.IntegerField(allow_null=True)
    fill_id = serializers.IntegerField(allow_null=True)
    position_id = serializers.IntegerField(allow_null=True)
    details = serializers.DictField(child=serializers.CharField())


class PreviewSerializer(serializers.Serializer):
    """A dry run: the figures before and after, and why it would be refused, if it would."""

    operation = serializers.CharField()
    before = QuoteField()
    after = QuoteField(allow_null=True)
    fingerprint = serializers.CharField(
        help_text="Send it back as `expected_fingerprint` to book only if nothing moved."
    )
    refusal = serializers.CharField(allow_null=True)
    details = serializers.DictField(child=serializers.CharField())


class WriteSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=False, help_text="Preview only: the figures before and after, nothing booked."
    )
    expected_fingerprint = serializers.CharField(
        required=False,
        max_length=64,
        help_text="A preview's fingerprint: refused (400) if the account moved since.",
    )


class TransferSerializer(WriteSerializer):
    asset = serializers.CharField(max_length=16)
    amount = serializers.DecimalField(**AMOUNT)


class OrderSerializer(WriteSerializer):
    instrument = serializers.CharField(max_length=32)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = serializers.DecimalField(**AMOUNT)


class LeverageSerializer(WriteSerializer):
    leverage = serializers.DecimalField(max_digits=10, decimal_places=2)


class IsolatedMarginSerializer(WriteSerializer):
    action = serializers.ChoiceField(choices=["add", "remove"])
    amount = serializers.DecimalField(**AMOUNT)


class MarginModeSerializer(WriteSerializer):
    mode = serializers.ChoiceField(choices=MarginMode.choices)
    isolated_margin = serializers.DecimalField(**AMOUNT, required=False, allow_null=True)


class AccountFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=AccountState.choices, required=False)


class IndexPriceSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.symbol")
    uncertain = serializers.BooleanField(
        help_text="The last index held for want of a quorum of agreeing sources: never "
        "liquidated on."
    )
    is_stale = serializers.BooleanField(help_text="Older than the price guard's age limit.")

    class Meta:
        model = AssetPrice
        fields = ["asset", "price", "updated_at", "uncertain", "uncertain_reason", "is_stale"]


class MarkPriceSerializer(serializers.ModelSerializer):
    instrument = serializers.CharField(source="instrument.symbol")
    uncertain = serializers.BooleanField(help_text="Its underlying's index is uncertain.")
    is_stale = serializers.BooleanField(help_text="Older than the price guard's age limit.")

    class Meta:
        model = MarkPrice
        fields = [
            "instrument",
            "mark_price",
            "index_price",
            "basis_price",
            "funding_price",
            "last_price",
            "binding",
            "updated_at",
            "uncertain",
            "uncertain_reason",
            "is_stale",
        ]


class PricesSerializer(serializers.Serializer):
    indexes = IndexPriceSerializer(many=True)
    marks = MarkPriceSerializer(many=True)


class GuardEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = GuardRejection
        fields = [
            "id",
            "at",
            "source",
            "kind",
            "symbol",
            "price",
            "reference_price",
            "counted_price",
            "reason",
            "detail",
        ]

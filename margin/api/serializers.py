"""Request and answer shapes of the trader endpoints. Inputs are only parsed here: the rules
(assets, limits, margin) are the services', which answer with ApplicationError."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from margin.api import display
from margin.api.display import DisplayField
from margin.api.quote_schema import QUOTE_ANSWER
from margin.engine.options import account_greeks
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
from margin.selectors.options import held_options

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


class ScenarioSerializer(serializers.Serializer):
    """A scenario of the portfolio grid (vectors/OPTIONS.md): its number (1–24), relative
    moves of the underlying's price and implied vol, loss weight and the weighted loss."""

    number = serializers.IntegerField()
    spot_shock = serializers.DecimalField(max_digits=10, decimal_places=6)
    vol_shock = serializers.DecimalField(max_digits=10, decimal_places=6)
    weight = serializers.DecimalField(max_digits=10, decimal_places=6)
    loss = serializers.DecimalField(**AMOUNT)


class NetGreeksSerializer(serializers.Serializer):
    """The account's Greeks on one underlying of its portfolio grid and the grid's figures."""

    underlying = serializers.CharField()
    net_delta = serializers.DecimalField(
        **AMOUNT,
        source="delta",
        help_text="In units of the underlying: options and the linear positions (±1 each).",
    )
    gamma = serializers.DecimalField(**AMOUNT)
    vega = serializers.DecimalField(**AMOUNT, help_text="USD per vol point.")
    theta = serializers.DecimalField(**AMOUNT, help_text="USD per day.")
    scan_risk = serializers.DecimalField(**AMOUNT, source="risk.scan_risk")
    min_delta_risk = serializers.DecimalField(**AMOUNT, source="risk.min_delta_risk")
    initial_margin = serializers.DecimalField(
        **AMOUNT, source="risk.initial_margin", help_text="max(scan risk, minimum delta risk)."
    )
    binding_scenario = serializers.SerializerMethodField()

    @extend_schema_field(ScenarioSerializer)
    def get_binding_scenario(self, greeks) -> dict:
        """The scenario whose weighted loss is the scan risk."""
        n = greeks.risk.worst_scenario
        scenario = greeks.binding_scenario
        return ScenarioSerializer(
            {
                "number": n + 1,
                "spot_shock": scenario.spot_shock,
                "vol_shock": scenario.vol_shock,
                "weight": scenario.weight,
                "loss": greeks.risk.losses[n],
            }
        ).data


class AccountDetailSerializer(AccountSerializer):
    wallets = WalletSerializer(many=True, read_only=True)
    figures = QuoteField(read_only=True, help_text="The engine's figures now, at current marks.")
    option_greeks = serializers.SerializerMethodField()

    @extend_schema_field(NetGreeksSerializer(many=True))
    def get_option_greeks(self, account) -> list:
        """Per underlying of the portfolio grid (empty off it): net delta, gamma, vega, theta,
        scan risk, minimum delta risk, the requirement and the binding scenario."""
        quote = account.figures
        return NetGreeksSerializer(account_greeks(quote.options, quote.portfolio), many=True).data

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "wallets", "figures", "option_greeks"]


class FundingSerializer(serializers.Serializer):
    """A perpetual's funding: a positive rate makes longs pay shorts (Binance USD-M)."""

    next_funding_time = serializers.DateTimeField()
    predicted_rate = serializers.DecimalField(max_digits=20, decimal_places=12)
    last_rate = serializers.DecimalField(max_digits=20, decimal_places=12, allow_null=True)
    last_funding_time = serializers.DateTimeField(allow_null=True)
    interval_hours = serializers.IntegerField(help_text="Hours of market time between fundings.")


class OptionPositionSerializer(serializers.Serializer):
    """An option position: the contract, the premium, and (while open) the engine's Black-76
    mark at the forward and the surface's implied vol, with the Greeks per contract."""

    underlying = serializers.CharField()
    option_type = serializers.ChoiceField(choices=["call", "put"])
    strike = serializers.DecimalField(**AMOUNT)
    expiry = serializers.DateTimeField()
    premium = serializers.DecimalField(
        **AMOUNT, help_text="Premium per contract the position was opened at."
    )
    premium_paid = serializers.DecimalField(
        **AMOUNT, help_text="Signed size × premium: paid by a long (+), received by a short (−)."
    )
    forward = serializers.DecimalField(**AMOUNT, allow_null=True)
    implied_vol = serializers.DecimalField(**AMOUNT, allow_null=True)
    expiry_days = serializers.DecimalField(
        **AMOUNT, allow_null=True, help_text="Market days to expiry (T = days / 365)."
    )
    mark = serializers.DecimalField(**AMOUNT, allow_null=True)
    unrealized_pnl = serializers.DecimalField(**AMOUNT, allow_null=True)
    delta = serializers.DecimalField(**AMOUNT, allow_null=True)
    gamma = serializers.DecimalField(**AMOUNT, allow_null=True)
    vega = serializers.DecimalField(**AMOUNT, allow_null=True, help_text="Per vol point.")
    theta = serializers.DecimalField(**AMOUNT, allow_null=True, help_text="Per day.")
    position_delta = serializers.DecimalField(
        **AMOUNT, allow_null=True, help_text="Signed size × delta."
    )


class PositionSerializer(serializers.ModelSerializer):
    instrument = serializers.SlugRelatedField(slug_field="symbol", read_only=True)
    kind = serializers.ChoiceField(
        source="instrument.kind", choices=["perpetual", "future", "option"], read_only=True
    )
    side = serializers.ChoiceField(choices=["long", "short", "flat"], read_only=True)
    isolated_margin = serializers.DecimalField(**AMOUNT, allow_null=True, read_only=True)
    cumulative_funding = serializers.DecimalField(
        **AMOUNT, read_only=True, help_text="Funding received (+) or paid (−) so far."
    )
    funding = serializers.SerializerMethodField()
    option = serializers.SerializerMethodField()
    display = DisplayField(display.POSITION)

    @extend_schema_field(OptionPositionSerializer(allow_null=True))
    def get_option(self, position) -> dict | None:
        """The option's contract, premium, mark, IV and Greeks; null for a perpetual or a
        future. Mark and Greeks are null once the position is flat."""
        instrument = position.instrument
        if instrument.kind != "option":
            return None
        root = self.root
        if not hasattr(root, "_held_options"):
            root._held_options = {}
        account_id = position.margin_account_id
        if account_id not in root._held_options:
            root._held_options[account_id] = held_options(account_id)
        held = root._held_options[account_id].get(instrument.symbol)
        terms, quote = (held.terms, held.quote) if held else (None, None)
        return OptionPositionSerializer(
            {
                "underlying": instrument.underlying.symbol,
                "option_type": instrument.option_type,
                "strike": instrument.strike,
                "expiry": instrument.expiry,
                "premium": position.entry_price,
                "premium_paid": position.quantity * position.entry_price,
                "forward": terms and terms.forward,
                "implied_vol": terms and terms.implied_vol,
                "expiry_days": terms and terms.expiry_days,
                "mark": quote and quote.mark_price,
                "unrealized_pnl": quote and quote.unrealized_pnl,
                "delta": quote and quote.delta,
                "gamma": quote and quote.gamma,
                "vega": quote and quote.vega,
                "theta": quote and quote.theta,
                "position_delta": quote and quote.position_delta,
            }
        ).data

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
            "kind",
            "side",
            "quantity",
            "entry_price",
            "leverage",
            "margin_mode",
            "isolated_margin",
            "realized_pnl",
            "cumulative_funding",
            "funding",
            "option",
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
    uncertain = serializers.BooleanField(
        help_text="The last mark held: its underlying's index is uncertain, or (an option) its "
        "vol surface is stale. Never liquidated on."
    )
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


class ChainQuoteSerializer(serializers.Serializer):
    """One series of the chain: bid and ask are Black-76 at the surface's vol ∓ one vol point,
    the mark at its vol; the Greeks per contract (vega per vol point, theta per day)."""

    symbol = serializers.CharField()
    bid = serializers.FloatField()
    mark = serializers.DecimalField(**AMOUNT)
    ask = serializers.FloatField()
    implied_vol = serializers.DecimalField(**AMOUNT)
    delta = serializers.FloatField()
    gamma = serializers.FloatField()
    vega = serializers.FloatField()
    theta = serializers.FloatField()


class ChainRowSerializer(serializers.Serializer):
    strike = serializers.DecimalField(**AMOUNT)
    call = ChainQuoteSerializer(allow_null=True)
    put = ChainQuoteSerializer(allow_null=True)


class ChainExpirySerializer(serializers.Serializer):
    underlying = serializers.CharField()
    expiry = serializers.DateTimeField()
    days = serializers.FloatField(help_text="Market days to expiry.")
    forward = serializers.DecimalField(**AMOUNT, help_text="The underlying's forward (its mark).")
    strikes = ChainRowSerializer(many=True, source="rows")


class ChainFilterSerializer(serializers.Serializer):
    underlying = serializers.CharField(
        required=False, max_length=16, help_text="An underlying asset, e.g. BTC."
    )
    expiry = serializers.DateTimeField(
        required=False, help_text="One expiry (ISO 8601, as the chain lists it)."
    )

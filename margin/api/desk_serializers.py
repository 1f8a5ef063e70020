"""Request and answer shapes of the risk desk's endpoints."""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from margin.api import display
from margin.api.display import DisplayField
from margin.input_limits import (
    DEPTH_USD,
    FREE_TEXT,
    MINUTES,
    SHOCK,
    TIME_VALIDATORS,
    check_fits_column,
    column_digits,
)
from margin.models import (
    AccountState,
    Bracket,
    CascadeRun,
    Case,
    CaseNote,
    CreditTierTerms,
    HaircutTier,
    MarginScheme,
    MarginSnapshot,
    ParameterVersion,
    Proposal,
    StressRun,
    VolatilityFloor,
)
from margin.services.cascade import DEFAULT_DEPTH_USD, MAX_ROUNDS
from margin.services.parameters import SCALAR_FIELDS
from margin.services.stress_runs import SCENARIOS, stress_events

DECIMAL = {"max_digits": 38, "decimal_places": 18}
USERNAME = {"slug_field": "username", "read_only": True}


class QueueRowSerializer(serializers.ModelSerializer):
    """One account of the latest complete revaluation."""

    account_id = serializers.IntegerField()
    owner = serializers.CharField(source="account.owner.username")
    credit_tier = serializers.CharField(source="account.credit_tier.code")
    reduce_only = serializers.BooleanField(source="account.reduce_only")
    buffer = serializers.DecimalField(
        **DECIMAL, help_text="Margin balance − maintenance margin (USD)."
    )
    stress_cover = serializers.DecimalField(
        **DECIMAL,
        help_text="Margin balance − stress loss (USD): below 0, the worst stress scenario "
        "leaves the account bankrupt.",
    )
    state = serializers.ChoiceField(choices=AccountState.choices)
    display = DisplayField(display.QUEUE_ROW)
    stale_blocked = serializers.BooleanField(
        help_text="Its liquidation at this tick was held back by a material stale price "
        "(a desk alert was raised)."
    )

    class Meta:
        model = MarginSnapshot
        fields = [
            "account_id",
            "owner",
            "credit_tier",
            "reduce_only",
            "state",
            "margin_ratio",
            "margin_balance",
            "maintenance_margin",
            "buffer",
            "stress_margin",
            "stress_cover",
            "gross_notional",
            "scan_risk",
            "binding_scenario",
            "display",
            "stale_blocked",
            "tick",
        ]
        extra_kwargs = {
            "tick": {
                "help_text": "The revaluation tick the figures are of: the page's for every "
                "account at risk, changing state or at the queue's head; for a healthy one "
                "maybe an earlier tick, at most SNAPSHOT_REFRESH_TICKS complete ticks back."
            },
            "scan_risk": {
                "help_text": "Options grid (OPTIONS.md): scan risk summed over the account's "
                "underlyings (USD); 0 for an account holding no option."
            },
            "binding_scenario": {
                "help_text": "The grid scenario setting the largest scan risk, e.g. "
                "'BTC −16 % · vol +40 %'; empty for an account holding no option."
            },
        }


class GreekRowSerializer(serializers.Serializer):
    """One underlying's exposure by Greek over every account (`margin.selectors.greeks`)."""

    underlying = serializers.CharField()
    price = serializers.FloatField(allow_null=True, help_text="Its price (USD); null if none.")
    net_delta = serializers.FloatField(help_text="Σ delta × side × quantity (units).")
    option_delta = serializers.FloatField(help_text="The options' part of the net delta.")
    linear_delta = serializers.FloatField(help_text="Perpetuals' and futures' ±quantity.")
    dollar_delta = serializers.FloatField(allow_null=True, help_text="Net delta × price (USD).")
    gamma = serializers.FloatField(help_text="Σ gamma × side × quantity (per unit).")
    vega = serializers.FloatField(help_text="Σ vega × side × quantity (USD per vol point).")
    theta = serializers.FloatField(help_text="Σ theta × side × quantity (USD per day).")
    holders = serializers.IntegerField(help_text="Accounts holding an option on it.")


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(**USERNAME)

    class Meta:
        model = CaseNote
        fields = ["id", "author", "body", "created_at"]


class CaseSerializer(serializers.ModelSerializer):
    # null: opened by the system (`Case.opened_by`)
    opened_by = serializers.SlugRelatedField(**USERNAME, allow_null=True)
    assignee = serializers.SlugRelatedField(**USERNAME, allow_null=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "margin_account",
            "status",
            "summary",
            "opened_by",
            "assignee",
            "opened_at",
            "closed_at",
            "resolution",
        ]


class CaseDetailSerializer(CaseSerializer):
    notes = NoteSerializer(many=True, read_only=True)
    proposals = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "notes", "proposals"]


class ProposalSerializer(serializers.ModelSerializer):
    proposer = serializers.SlugRelatedField(**USERNAME)
    approver = serializers.SlugRelatedField(**USERNAME, allow_null=True)
    payload = serializers.JSONField()
    impact = serializers.JSONField(allow_null=True)
    result = serializers.JSONField(allow_null=True)

    class Meta:
        model = Proposal
        fields = [
            "id",
            "kind",
            "status",
            "payload",
            "reason",
            "margin_account",
            "case",
            "impact",
            "result",
            "proposer",
            "approver",
            "created_at",
            "expires_at",
            "decided_at",
            "decision_note",
        ]


class StressRunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(**USERNAME)
    parameter_version = serializers.SlugRelatedField(
        slug_field="number", read_only=True, allow_null=True
    )
    options = serializers.JSONField()
    details = serializers.JSONField()

    class Meta:
        model = StressRun
        fields = [
            "id",
            "scenario",
            "options",
            "label",
            "parameter_version",
            "created_by",
            "created_at",
            "accounts",
            "accounts_under_maintenance",
            "maintenance_shortfall",
            "deficit",
            "insurance_fund",
            "coverage",
            "duration_ms",
            "details",
        ]


class CascadeRunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(**USERNAME)
    options = serializers.JSONField()
    rounds = serializers.JSONField()

    class Meta:
        model = CascadeRun
        fields = [
            "id",
            "options",
            "label",
            "status",
            "progress",
            "created_by",
            "created_at",
            "finished_at",
            "duration_ms",
            "rounds",
            "accounts_liquidated",
            "insurance_used",
            "error",
        ]


class BracketRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bracket
        fields = ["floor", "mmr", "max_leverage"]


class HaircutRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = HaircutTier
        fields = ["floor", "ratio"]


class CreditTermsSerializer(serializers.ModelSerializer):
    tier = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = CreditTierTerms
        fields = ["tier", "haircut_scale", "mm_scale"]


class ParameterVersionSerializer(serializers.ModelSerializer):
    in_force = serializers.BooleanField()
    scheduled = serializers.BooleanField()
    brackets = serializers.DictField(child=BracketRowSerializer(many=True))
    haircuts = serializers.DictField(child=HaircutRowSerializer(many=True))
    credit_terms = CreditTermsSerializer(many=True)

    class Meta:
        model = ParameterVersion
        fields = [
            "number",
            "effective_at",
            "note",
            "in_force",
            "scheduled",
            *SCALAR_FIELDS,
            "brackets",
            "haircuts",
            "credit_terms",
        ]


# Inputs


class SummarySerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=200)


class NoteInputSerializer(serializers.Serializer):
    body = serializers.CharField(**FREE_TEXT)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(max_length=150, help_text="Username of a desk member.")


class CloseSerializer(serializers.Serializer):
    resolution = serializers.CharField(**FREE_TEXT)


class MarginCallSerializer(serializers.Serializer):
    message = serializers.CharField(**FREE_TEXT)


class ReduceOnlySerializer(serializers.Serializer):
    reduce_only = serializers.BooleanField()
    reason = serializers.CharField(max_length=500)


def ttl_of(data: dict) -> timedelta:
    return timedelta(hours=float(data["ttl_hours"]))


class ProposalInputSerializer(serializers.Serializer):
    reason = serializers.CharField(**FREE_TEXT)
    ttl_hours = serializers.DecimalField(
        max_digits=6, decimal_places=2, min_value=Decimal("0.1"), max_value=168, default=24
    )


class ForcedReductionSerializer(ProposalInputSerializer):
    instrument = serializers.CharField(max_length=32)
    quantity = serializers.DecimalField(**DECIMAL)


class CreditTierChangeSerializer(ProposalInputSerializer):
    tier = serializers.CharField(max_length=32, help_text="Credit tier code.")


class MarginSchemeChangeSerializer(ProposalInputSerializer):
    scheme = serializers.ChoiceField(
        choices=MarginScheme.choices,
        help_text="standard: the tiered maintenance margin; portfolio: the larger of the tiered "
        "MM and the stress loss.",
    )


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(**FREE_TEXT, required=False, allow_blank=True, default="")


class DecimalText(serializers.DecimalField):
    """A decimal, handed on as its text (the services keep payloads as strings); bounded by
    the column it will be stored in when one is named."""

    def __init__(self, column: tuple | None = None, **kwargs):
        super().__init__(**(column_digits(*column) if column else DECIMAL), **kwargs)
        self.column = column

    def to_internal_value(self, data):
        number = super().to_internal_value(data)
        if self.column:
            try:
                check_fits_column(*self.column, number)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None
        return str(number)


class BracketInputSerializer(serializers.Serializer):
    floor = DecimalText((Bracket, "floor"))
    mmr = DecimalText((Bracket, "mmr"))
    max_leverage = DecimalText((Bracket, "max_leverage"))


class HaircutInputSerializer(serializers.Serializer):
    floor = DecimalText((HaircutTier, "floor"))
    ratio = DecimalText((HaircutTier, "ratio"))


class CreditTermsInputSerializer(serializers.Serializer):
    haircut_scale = DecimalText((CreditTierTerms, "haircut_scale"))
    mm_scale = DecimalText((CreditTierTerms, "mm_scale"))


class ParameterChangeSerializer(ProposalInputSerializer):
    """A change of the parameters in force (`margin.services.parameters`); any part may be
    left out. With `dry_run` only its impact on the whole book is answered."""

    dry_run = serializers.BooleanField(default=False)
    reason = serializers.CharField(**FREE_TEXT, required=False, default="")
    brackets = serializers.DictField(
        child=BracketInputSerializer(many=True), required=False, help_text="By instrument."
    )
    haircuts = serializers.DictField(
        child=HaircutInputSerializer(many=True), required=False, help_text="By asset."
    )
    credit_terms = serializers.DictField(
        child=CreditTermsInputSerializer(), required=False, help_text="By credit tier code."
    )
    volatility_floors = serializers.DictField(
        child=DecimalText((VolatilityFloor, "daily_vol")),
        required=False,
        help_text="By asset: the published floor of its daily volatility (σ) in the stress "
        "margin, a fraction in (0, 1): 0.03 is 3 % a day.",
    )
    effective_at = serializers.DateTimeField(
        required=False, allow_null=True, validators=TIME_VALIDATORS
    )

    def get_fields(self):
        # "fields" is the payload's key for the scalars; as a class attribute it would hide
        # the serializer's own `fields`.
        scalars = serializers.DictField(
            child=DecimalText(), required=False, help_text=f"Any of: {', '.join(SCALAR_FIELDS)}."
        )
        return {"fields": scalars, **super().get_fields()}

    def validate_fields(self, scalars: dict) -> dict:
        """Each known scalar bounded by its column (unknown names are the service's refusal)."""
        errors = {}
        for name, text in scalars.items():
            if name not in SCALAR_FIELDS:
                continue
            try:
                check_fits_column(ParameterVersion, name, Decimal(text))
            except DjangoValidationError as error:
                errors[name] = error.messages
        if errors:
            raise serializers.ValidationError(errors)
        return scalars

    def payload(self) -> dict:
        data = self.validated_data
        payload = {
            name: data[name]
            for name in ("fields", "brackets", "haircuts", "credit_terms", "volatility_floors")
            if name in data
        }
        if data.get("effective_at"):
            payload["effective_at"] = data["effective_at"].isoformat()
        return payload


class ImpactSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    accounts = serializers.IntegerField()
    thresholds = serializers.ListField(child=serializers.DictField())
    maintenance_margin_now = serializers.FloatField()
    maintenance_margin_proposed = serializers.FloatField()
    maintenance_margin_change = serializers.FloatField()
    collateral_value_now = serializers.FloatField()
    collateral_value_proposed = serializers.FloatField()
    collateral_value_change = serializers.FloatField()


class ScenarioSerializer(serializers.Serializer):
    scenario = serializers.ChoiceField(choices=list(SCENARIOS.items()))
    move = serializers.DecimalField(**SHOCK, required=False)
    k_sigma = serializers.DecimalField(**SHOCK, required=False)
    asset = serializers.CharField(max_length=16, required=False)
    minutes = serializers.DecimalField(**MINUTES, required=False)
    event = serializers.ChoiceField(
        choices=list(stress_events()), required=False, help_text="Real event: its name."
    )

    def options(self) -> dict:
        """The given options as strings (they are saved with the run as JSON)."""
        return {
            name: str(value) for name, value in self.validated_data.items() if name != "scenario"
        }


class CascadeInputSerializer(ScenarioSerializer):
    depth_usd = serializers.DecimalField(
        **DEPTH_USD, min_value=Decimal(0), default=DEFAULT_DEPTH_USD
    )
    max_rounds = serializers.IntegerField(min_value=1, max_value=MAX_ROUNDS, default=10)

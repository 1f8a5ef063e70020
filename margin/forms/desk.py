"""The desk's forms: each cleans its own fields; the services check the rest."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import forms

from margin.forms.fields import PositiveAmountField
from margin.input_limits import (
    DEPTH_USD,
    FREE_TEXT,
    MINUTES,
    SCENARIO_MAX_ACCOUNTS,
    SCENARIO_MAX_BYTES,
    SCENARIO_MAX_STEPS,
    SHOCK,
    TIME_VALIDATORS,
    check_fits_column,
    column_digits,
    column_validators,
)
from margin.models import (
    Asset,
    Bracket,
    CreditTier,
    CreditTierTerms,
    HaircutTier,
    Instrument,
    MarginScheme,
    ParameterVersion,
    VolatilityFloor,
)
from margin.numbers import quantity_text
from margin.scenarios.loader import ScenarioError, scenario_parse
from margin.selectors.accounts import credit_tiers, desk_users, open_positions_of
from margin.services.cascade import DEFAULT_DEPTH_USD, MAX_ROUNDS
from margin.services.parameters import SCALAR_FIELDS
from margin.services.stress_runs import SCENARIOS, stress_events


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _column_decimal(model, name: str, **kwargs) -> forms.DecimalField:
    """A decimal field accepting only what the column `model.name` stores. Its input takes any
    step: the column's 1e-12 would reach the page as `step="1e-12"`, a raw number."""
    kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "any"}))
    return forms.DecimalField(
        **column_digits(model, name), validators=column_validators(model, name), **kwargs
    )


def _check_column(model, name: str, text: str) -> None:
    """Refuse `text` unless it is a number the column `model.name` stores."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise forms.ValidationError(f"{name}: {text[:40]!r} is not a number.") from None
    try:
        check_fits_column(model, name, number)
    except forms.ValidationError as error:
        raise forms.ValidationError(f"{name}: {' '.join(error.messages)}") from None


class TtlMixin(forms.Form):
    ttl_hours = forms.DecimalField(
        label="Expires after (hours)", initial=24, min_value=0.1, max_value=168, decimal_places=2
    )

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=float(self.cleaned_data["ttl_hours"]))


class CaseOpenForm(forms.Form):
    summary = forms.CharField(max_length=200, label="Why open a case")


class NoteForm(forms.Form):
    body = forms.CharField(**FREE_TEXT, widget=forms.Textarea(attrs={"rows": 3}), label="Note")


class AssignForm(forms.Form):
    # Each form gets a fresh copy of the queryset (ModelChoiceField.__deepcopy__).
    assignee = forms.ModelChoiceField(queryset=desk_users(), label="Assign to")


class CloseForm(forms.Form):
    resolution = forms.CharField(
        **FREE_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Resolution"
    )


class MarginCallForm(forms.Form):
    message = forms.CharField(
        **FREE_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Message to the trader",
        initial="Your margin ratio is high: add collateral or reduce your positions.",
    )


class ReduceOnlyForm(forms.Form):
    reduce_only = forms.TypedChoiceField(
        choices=[("1", "Restrict to reduce-only"), ("0", "Lift the restriction")],
        coerce=lambda value: value == "1",
        label="Restriction",
    )
    reason = forms.CharField(max_length=500, label="Reason (the trader sees it)")


class ForcedReductionForm(TtlMixin):
    position = forms.ModelChoiceField(queryset=open_positions_of(None), label="Position")
    quantity = PositiveAmountField("Reduce by")
    reason = forms.CharField(**FREE_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")
    field_order = ["position", "quantity", "reason", "ttl_hours"]

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].queryset = open_positions_of(account)
        self.fields["position"].label_from_instance = lambda p: (
            f"{p.instrument.symbol} {p.side} {quantity_text(abs(p.quantity))}"
        )


class CreditTierForm(TtlMixin):
    tier = forms.ModelChoiceField(queryset=credit_tiers(), label="New credit tier")
    reason = forms.CharField(**FREE_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")
    field_order = ["tier", "reason", "ttl_hours"]


class MarginSchemeForm(TtlMixin):
    scheme = forms.ChoiceField(choices=MarginScheme.choices, label="New margin scheme")
    reason = forms.CharField(**FREE_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")
    field_order = ["scheme", "reason", "ttl_hours"]


class DecisionForm(forms.Form):
    note = forms.CharField(
        **FREE_TEXT, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note"
    )


class ScenarioForm(forms.Form):
    scenario = forms.ChoiceField(choices=list(SCENARIOS.items()), label="Scenario")
    move = forms.DecimalField(
        **SHOCK, required=False, initial=-0.2, label="Move (uniform, de-peg), e.g. −0.2 = −20 %"
    )
    k_sigma = forms.DecimalField(**SHOCK, required=False, initial=3, label="k σ (EWMA, correlated)")
    asset = forms.CharField(
        max_length=_max_length(Asset, "symbol"),
        required=False,
        initial="USDC",
        label="Asset (de-peg)",
    )
    minutes = forms.DecimalField(
        **MINUTES, required=False, initial=60, label="Minutes back (replay)"
    )
    event = forms.ChoiceField(
        choices=[("", "—")] + [(name, e.title) for name, e in stress_events().items()],
        required=False,
        label="Event (real event)",
    )

    def options(self) -> dict:
        """The filled options as strings (they are saved with the run as JSON)."""
        return {
            name: str(value)
            for name, value in self.cleaned_data.items()
            if value not in (None, "") and name != "scenario"
        }


class CascadeForm(ScenarioForm):
    depth_usd = forms.DecimalField(
        **DEPTH_USD,
        initial=DEFAULT_DEPTH_USD,
        min_value=0,
        label="Market depth (USD per 1 % move)",
    )
    max_rounds = forms.IntegerField(initial=10, min_value=1, max_value=MAX_ROUNDS, label="Rounds")


class ParameterChangeForm(TtlMixin):
    """Every scalar of the version (blank: unchanged), one instrument's brackets, one asset's
    haircut tiers and one credit tier's scales, each as text lines."""

    bracket_instrument = forms.CharField(
        max_length=_max_length(Instrument, "symbol"), required=False, label="Instrument (brackets)"
    )
    brackets = forms.CharField(
        **FREE_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Brackets: one 'floor mmr max_leverage' per line",
    )
    haircut_asset = forms.CharField(
        max_length=_max_length(Asset, "symbol"), required=False, label="Asset (haircut tiers)"
    )
    haircuts = forms.CharField(
        **FREE_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Haircut tiers: one 'floor ratio' per line",
    )
    credit_tier = forms.CharField(
        max_length=_max_length(CreditTier, "code"), required=False, label="Credit tier code"
    )
    haircut_scale = _column_decimal(CreditTierTerms, "haircut_scale", required=False)
    mm_scale = _column_decimal(CreditTierTerms, "mm_scale", required=False)
    volatility_floors = forms.CharField(
        **FREE_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Volatility floors: one 'asset daily_σ' per line (0.03: 3 % a day)",
    )
    effective_at = forms.DateTimeField(
        required=False, validators=TIME_VALIDATORS, label="Effective at (blank: on approval)"
    )
    reason = forms.CharField(**FREE_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scalars = {
            name: _column_decimal(
                ParameterVersion, name, required=False, label=name.replace("_", " ")
            )
            for name in SCALAR_FIELDS
        }
        self.fields = {**scalars, **self.fields}

    @staticmethod
    def _rows(text: str, model, names: tuple[str, ...]) -> list[dict]:
        """Each line's numbers by name, each one checked against its column in `model`."""
        rows = []
        for line in text.splitlines():
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if len(parts) != len(names):
                raise forms.ValidationError(f"Each line needs {len(names)} numbers: {line!r}")
            row = dict(zip(names, parts, strict=True))
            for name, text_value in row.items():
                _check_column(model, name, text_value)
            rows.append(row)
        return rows

    def clean(self):
        data = super().clean()
        try:
            self.payload = self._payload(data)
        except forms.ValidationError as error:
            self.add_error(None, error)
        return data

    def _payload(self, data: dict) -> dict:
        """The change in the parameters service's payload shape."""
        payload: dict = {
            "fields": {n: str(data[n]) for n in SCALAR_FIELDS if data.get(n) is not None}
        }
        if data.get("bracket_instrument") and data.get("brackets"):
            payload["brackets"] = {
                data["bracket_instrument"]: self._rows(
                    data["brackets"], Bracket, ("floor", "mmr", "max_leverage")
                )
            }
        if data.get("haircut_asset") and data.get("haircuts"):
            payload["haircuts"] = {
                data["haircut_asset"]: self._rows(data["haircuts"], HaircutTier, ("floor", "ratio"))
            }
        if data.get("credit_tier"):
            payload["credit_terms"] = {
                data["credit_tier"]: {
                    "haircut_scale": str(data.get("haircut_scale") or 1),
                    "mm_scale": str(data.get("mm_scale") or 1),
                }
            }
        if data.get("volatility_floors"):
            payload["volatility_floors"] = self._floors(data["volatility_floors"])
        if data.get("effective_at"):
            payload["effective_at"] = data["effective_at"].isoformat()
        return payload

    @staticmethod
    def _floors(text: str) -> dict[str, str]:
        """{asset: daily σ} of 'asset σ' lines, each σ checked against its column."""
        floors = {}
        for line in text.splitlines():
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if len(parts) != 2:
                raise forms.ValidationError(f"Each line needs an asset and a σ: {line!r}")
            asset, sigma = parts
            _check_column(VolatilityFloor, "daily_vol", sigma)
            floors[asset.upper()] = sigma
        return floors


class ScenarioFileForm(forms.Form):
    """A risk scenario in `manage.py run_scenario`'s format, uploaded or pasted, read and
    checked before it runs: within `SCENARIO_MAX_BYTES` (1 MiB), UTF-8, JSON within the site's
    limits (no deeper than 32 levels, no NaN or Infinity, no control characters), every field
    the loader checks, and small enough to run inside the request (`SCENARIO_MAX_ACCOUNTS`
    accounts, `SCENARIO_MAX_STEPS` price steps). Cleaned: `scenario`, `input_text`, `name`."""

    file = forms.FileField(required=False, label="Scenario file (JSON)")
    text = forms.CharField(
        required=False,
        strip=False,
        label="or paste it",
        widget=forms.Textarea(attrs={"rows": 14, "cols": 80, "spellcheck": "false"}),
    )

    def _text_of_upload(self, upload) -> str:
        if upload.size > SCENARIO_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; a scenario is at most "
                f"{SCENARIO_MAX_BYTES:,} bytes (larger ones: manage.py run_scenario)."
            )
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text") or ""
        if bool(upload) == bool(text.strip()):
            raise forms.ValidationError("Upload a scenario file or paste one (one of the two).")
        if upload:
            text, name = self._text_of_upload(upload), upload.name
        elif len(text.encode("utf-8")) > SCENARIO_MAX_BYTES:
            raise forms.ValidationError(
                f"The text is over {SCENARIO_MAX_BYTES:,} bytes, the most a scenario may be."
            )
        else:
            name = "pasted"
        try:
            scenario = scenario_parse(text)
        except ScenarioError as error:
            raise forms.ValidationError(f"Not a scenario this runs: {error}") from None
        if len(scenario.accounts) > SCENARIO_MAX_ACCOUNTS:
            raise forms.ValidationError(
                f"{len(scenario.accounts)} accounts; the page runs at most "
                f"{SCENARIO_MAX_ACCOUNTS} (more: manage.py run_scenario)."
            )
        if len(scenario.prices) > SCENARIO_MAX_STEPS:
            raise forms.ValidationError(
                f"{len(scenario.prices)} price steps; the page runs at most "
                f"{SCENARIO_MAX_STEPS} (more: manage.py run_scenario)."
            )
        cleaned.update(scenario=scenario, input_text=text, name=name)
        return cleaned

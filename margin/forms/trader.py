"""The trader's forms: each validates its own fields inline and carries an idempotency key.

The key is a uuid4 drawn when the form is rendered, so two clicks on the same rendered form send
the same key and the service books once; a fresh form (after a success) draws a new one.
"""

from decimal import Decimal

from django import forms

from margin.forms.fields import IdempotentForm, PositiveAmountField
from margin.input_limits import DATE_VALIDATORS
from margin.models import MarginMode
from margin.selectors.market import active_instruments, assets


class CollateralForm(IdempotentForm):
    """Deposit (demo) or withdraw one asset of the cross wallet."""

    asset = forms.ModelChoiceField(
        queryset=assets(), to_field_name="symbol", empty_label=None, initial="USDT"
    )
    amount = PositiveAmountField("Amount")


class TradeForm(IdempotentForm):
    """A market order on one instrument: it opens, increases, reduces, closes or flips the net
    position (one-way mode), filled at the mark plus the taker fee."""

    BUY = "buy"
    SELL = "sell"

    instrument = forms.ModelChoiceField(
        queryset=active_instruments(),
        to_field_name="symbol",
        empty_label=None,
    )
    side = forms.ChoiceField(
        choices=[(BUY, "Buy / long"), (SELL, "Sell / short")], widget=forms.RadioSelect, initial=BUY
    )
    quantity = PositiveAmountField("Quantity")


class LeverageForm(IdempotentForm):
    leverage = forms.DecimalField(
        label="Leverage",
        min_value=Decimal(1),
        max_digits=10,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "1"}),
    )

    def __init__(self, *args, max_leverage: Decimal | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_leverage = max_leverage
        if max_leverage is not None:
            self.fields["leverage"].widget.attrs["max"] = f"{max_leverage.normalize():f}"

    def clean_leverage(self) -> Decimal:
        leverage = self.cleaned_data["leverage"]
        if self.max_leverage is not None and leverage > self.max_leverage:
            raise forms.ValidationError(
                f"At most {self.max_leverage.normalize():f}× in this position's bracket."
            )
        return leverage


class IsolatedMarginForm(IdempotentForm):
    ADD = "add"
    REMOVE = "remove"

    direction = forms.ChoiceField(
        choices=[(ADD, "Add"), (REMOVE, "Remove")], widget=forms.RadioSelect, initial=ADD
    )
    amount = PositiveAmountField("Amount (USDT)")


class MarginModeForm(IdempotentForm):
    """Switch one position between cross and isolated; to isolated, fence `isolated_margin`."""

    margin_mode = forms.ChoiceField(choices=MarginMode.choices, widget=forms.HiddenInput)
    isolated_margin = PositiveAmountField("Margin to fence (USDT)", required=False)

    def clean(self):
        cleaned = super().clean()
        fencing = cleaned.get("margin_mode") == MarginMode.ISOLATED
        if fencing and "isolated_margin" in cleaned and cleaned["isolated_margin"] is None:
            self.add_error("isolated_margin", "Enter how much margin to fence.")
        return cleaned


class HistoryFilterForm(forms.Form):
    KINDS = [
        ("ledger", "Ledger entries"),
        ("fills", "Fills"),
        ("states", "State changes"),
        ("calls", "Margin calls"),
    ]

    kind = forms.ChoiceField(choices=KINDS, required=False)
    since = forms.DateField(
        required=False,
        validators=DATE_VALIDATORS,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        required=False,
        validators=DATE_VALIDATORS,
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class AccountOpenForm(forms.Form):
    name = forms.CharField(
        max_length=64, widget=forms.TextInput(attrs={"placeholder": "New account name"})
    )

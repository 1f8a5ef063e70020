"""Fields every form of the app shares: the amount people type, and the idempotency key a
rendered form carries so two clicks book once."""

import re
import uuid

from django import forms

MAX_DIGITS = 38
DECIMAL_PLACES = 18


# What people type: 1000, 1000.50, .5, or grouped by thousands with commas (1,000 / 1,000.50).
PLAIN_AMOUNT = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)?(\.\d+)?$")


class PositiveAmountField(forms.DecimalField):
    """An amount or a quantity: a decimal above 0, typed as text (no browser spinner), in plain
    digits with commas grouping thousands allowed; an exponent (1e3) is refused, as no trading
    screen takes one (Decimal would read it as 1000)."""

    default_error_messages = {
        "invalid": "Enter a number such as 1,000 or 1000.50.",
        "exponent": "Type the amount in plain digits (1,000 or 1000.50), not as an exponent.",
    }

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace(" ", "")
            if "e" in value.lower():
                raise forms.ValidationError(self.error_messages["exponent"], code="exponent")
            if value and not PLAIN_AMOUNT.match(value):
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            value = value.replace(",", "")
        return super().to_python(value)

    def __init__(self, label: str, **kwargs):
        super().__init__(
            label=label,
            max_digits=MAX_DIGITS,
            decimal_places=DECIMAL_PLACES,
            widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
            **kwargs,
        )

    def validate(self, value) -> None:
        super().validate(value)
        if value is not None and value <= 0:
            raise forms.ValidationError("Enter an amount above 0.")


class IdempotentForm(forms.Form):
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", uuid.uuid4())
        super().__init__(*args, **kwargs)

"""The API's `display` fields: figures as the pages print them (`margin.numbers`, the one
number policy), beside the exact decimals. A client shows people the display text and computes
with the decimals, so a ratio is never read 100× wrong and no 18-place remainder reaches anyone.
"""

from collections.abc import Callable

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from margin.numbers import money_text, percent_text, price_text, quantity_text, signed_money_text


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "example": {"margin_balance": "12,345.68 USD", "margin_ratio": "5.32%"},
    }
)
class DisplayField(serializers.Field):
    """{field: text} of the object's figures named in `formats` (field: number-policy
    function)."""

    def __init__(self, formats: dict[str, Callable], **kwargs):
        self.formats = formats
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("source", "*")
        kwargs.setdefault(
            "help_text",
            "The figures as the pages print them: money to the cent with its unit, ratios as "
            "percentages, prices and sizes to their places. Show these; compute with the "
            "decimals.",
        )
        super().__init__(**kwargs)

    def to_representation(self, value):
        return {name: show(_figure(value, name)) for name, show in self.formats.items()}


def _figure(value, name: str):
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def usd(value) -> str:
    return money_text(value, "USD")


def signed_usd(value) -> str:
    return signed_money_text(value, "USD")


def usdt(value) -> str:
    return money_text(value, "USDT")


def signed_usdt(value) -> str:
    return signed_money_text(value, "USDT")


SNAPSHOT = {
    "collateral_value": usd,
    "unrealized_pnl": signed_usd,
    "margin_balance": usd,
    "maintenance_margin": usd,
    "initial_margin": usd,
    "margin_ratio": percent_text,
    "withdrawable": usd,
    "stress_margin": usd,
}
QUEUE_ROW = {
    "margin_ratio": percent_text,
    "margin_balance": usd,
    "maintenance_margin": usd,
    "buffer": signed_usd,
    "stress_margin": usd,
    "stress_cover": signed_usd,
    "gross_notional": usd,
    "scan_risk": usd,
}
POSITION = {
    "quantity": quantity_text,
    "entry_price": price_text,
    "isolated_margin": usdt,
    "realized_pnl": signed_usdt,
    "cumulative_funding": signed_usdt,
}

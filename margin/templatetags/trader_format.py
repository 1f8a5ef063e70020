"""How the trader pages print figures: money to the cent, prices to their own precision,
ratios as percentages; numbers stay Decimals until here."""

from decimal import Decimal

from django import template

from margin.engine.explain import format_number

register = template.Library()

CENT = Decimal("0.01")
BASIS_POINT = Decimal("0.0001")


@register.filter
def money(value: Decimal | None) -> str:
    """12,345.68 (to the cent, grouped); an em dash when there is no figure."""
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(CENT):,}"


@register.filter
def signed_money(value: Decimal | None) -> str:
    """+1,234.50 / −1,234.50: a gain or loss always shows its sign."""
    if value is None:
        return "—"
    amount = Decimal(value).quantize(CENT)
    return f"+{amount:,}" if amount > 0 else f"{amount:,}".replace("-", "−")


@register.filter
def price(value: Decimal | None) -> str:
    """A price or quantity as the engine's explain prints it: 2 to 8 places, grouped."""
    if value is None:
        return "—"
    return format_number(Decimal(value))


@register.filter
def percent(value: Decimal | None) -> str:
    """A ratio as a percentage to the basis point: 0.0432 → 4.32%."""
    if value is None:
        return "—"
    return f"{(Decimal(value) * 100).quantize(CENT):,}%"


@register.filter
def sign_class(value: Decimal | None) -> str:
    """The CSS class of a gain (pos) or a loss (neg)."""
    if value is None or value == 0:
        return ""
    return "pos" if value > 0 else "neg"

"""How the trader pages print figures: money to the cent, prices to their own precision,
ratios as percentages; numbers stay Decimals until here."""

from decimal import Decimal

from django import template

from margin.engine.explain import format_number

register = template.Library()

MISSING = "—"


def _missing(value) -> bool:
    """No figure: None, or the empty string a template gives for a lookup on nothing (the
    "after" of a refused preview)."""
    return value is None or value == ""


CENT = Decimal("0.01")
BASIS_POINT = Decimal("0.0001")


@register.filter
def money(value: Decimal | None) -> str:
    """12,345.68 (to the cent, grouped); an em dash when there is no figure."""
    if _missing(value):
        return MISSING
    return f"{Decimal(value).quantize(CENT):,}"


@register.filter
def signed_money(value: Decimal | None) -> str:
    """+1,234.50 / −1,234.50: a gain or loss always shows its sign."""
    if _missing(value):
        return MISSING
    amount = Decimal(value).quantize(CENT)
    return f"+{amount:,}" if amount > 0 else f"{amount:,}".replace("-", "−")


# Places a price is shown to, by its size: about a venue's tick (BTC 0.01, SOL 0.001...).
PRICE_PLACES = ((Decimal(1000), 2), (Decimal(10), 3), (Decimal(1), 4))
SMALL_PRICE_PLACES = 6
QUANTITY_PLACES = Decimal("1e-8")


@register.filter
def price(value: Decimal | None) -> str:
    """A price to about its tick: 94,068.01 / 226.905 / 0.999960, grouped."""
    if _missing(value):
        return MISSING
    value = Decimal(value)
    places = next((p for floor, p in PRICE_PLACES if abs(value) >= floor), SMALL_PRICE_PLACES)
    return f"{value:,.{places}f}"


@register.filter
def quantity(value: Decimal | None) -> str:
    """A size or holding as the engine's explain prints it, 2 to 8 places: rounded to 8 first,
    so that a ledger's 18-place remainder does not print as a row of zeros."""
    if _missing(value):
        return MISSING
    return format_number(Decimal(value).quantize(QUANTITY_PLACES))


@register.filter
def percent(value: Decimal | None) -> str:
    """A ratio as a percentage to the basis point: 0.0432 → 4.32%."""
    if _missing(value):
        return MISSING
    return f"{(Decimal(value) * 100).quantize(CENT):,}%"


@register.filter
def sign_class(value: Decimal | None) -> str:
    """The CSS class of a gain (pos) or a loss (neg)."""
    if _missing(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"

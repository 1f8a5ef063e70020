"""The one number policy, as plain functions (no Django): what every page, CSV, API display
field and error message prints. The template filters in `margin.templatetags.numbers` and the
serializers' display fields call these; nothing else formats a figure.

- money to the cent, thousands grouped, with its unit when one is given: 12,345.68 USDT
- quantities to the instrument's step (or 2 to 8 places when no step is known)
- prices to the instrument's tick (or about a venue's tick by their size when none is known)
- every ratio as a percentage to two decimals, the same on trader, desk and disclosure pages
"""

from decimal import ROUND_HALF_EVEN, Decimal

from margin.engine.explain import format_number

MISSING = "—"
CENT = Decimal("0.01")
RATIO_PLACES = 2
QUANTITY_PLACES = Decimal("1e-8")

# Places a price is shown to, by its size, when its tick is not known (BTC 0.01, SOL 0.001...).
PRICE_PLACES = ((Decimal(1000), 2), (Decimal(10), 3), (Decimal(1), 4))
SMALL_PRICE_PLACES = 6


def is_missing(value) -> bool:
    """No figure: None, or the empty string a template gives for a lookup on nothing."""
    return value is None or value == ""


def _decimal(value) -> Decimal:
    """A Decimal of any figure; a float is taken by its shortest repr, not its binary digits."""
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def money_text(value, unit: str | None = None) -> str:
    """12,345.68 (to the cent, grouped), with the unit if given; −1,234.50 when negative."""
    if is_missing(value):
        return MISSING
    amount = _decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return _with_unit(f"{amount:,}".replace("-", "−"), unit)


def signed_money_text(value, unit: str | None = None) -> str:
    """+1,234.50 / −1,234.50: a gain or loss always shows its sign."""
    if is_missing(value):
        return MISSING
    amount = _decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return _with_unit(f"+{amount:,}" if amount > 0 else money_text(amount), unit)


def _places_of(step) -> int:
    return max(0, -_decimal(step).normalize().as_tuple().exponent)


def price_text(value, tick=None) -> str:
    """A price to its tick when known (94,068.01 at a tick of 0.01), else to about a venue's
    tick by its size (226.905, 0.999960), grouped."""
    if is_missing(value):
        return MISSING
    value = _decimal(value)
    if tick:
        places = _places_of(tick)
    else:
        places = next((p for floor, p in PRICE_PLACES if abs(value) >= floor), SMALL_PRICE_PLACES)
    return f"{value:,.{places}f}".replace("-", "−")


def quantity_text(value, step=None) -> str:
    """A size or holding to the instrument's step when known (0.125 at 0.001), else 2 to 8
    places (rounded to 8 first, so a ledger's 18-place remainder is not a row of zeros)."""
    if is_missing(value):
        return MISSING
    value = _decimal(value)
    if step:
        return f"{value:,.{_places_of(step)}f}".replace("-", "−")
    return format_number(value.quantize(QUANTITY_PLACES)).replace("-", "−")


def percent_text(value) -> str:
    """A ratio as a percentage to the basis point: 0.0432 → 4.32%."""
    if is_missing(value):
        return MISSING
    shown = (_decimal(value) * 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return f"{shown:,}%".replace("-", "−")

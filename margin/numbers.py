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


RATE_PLACES = Decimal("0.0001")


def rate_percent_text(value) -> str:
    """A funding rate as venues print it, a percentage to 4 places: 0.0001 → 0.0100%."""
    if is_missing(value):
        return MISSING
    shown = (_decimal(value) * 100).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)
    return f"{shown}%".replace("-", "−")


# How a field of an audit entry or a proposal reads, by its name: a ratio or rate as a
# percentage, a price to about its tick, a size as a quantity, money to the cent.
PERCENT_FIELDS = ("ratio", "rate", "mmr", "max_move", "slippage", "move")
PRICE_FIELDS = ("price",)
QUANTITY_FIELDS = ("quantity", "quantity_before", "quantity_after")
MONEY_FIELDS = ("pnl", "amount", "notional", "floor", "margin", "balance", "fee", "loss", "cum")


def field_text(name: str, value) -> str:
    """One value of a change as people read it; text that is not a number stays as it is."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, str | float | Decimal):
        return "yes" if value is True else "no" if value is False else str(value)
    try:
        number = _decimal(value)
    except ArithmeticError:
        return str(value)
    leaf = name.rsplit(".", 1)[-1]
    if leaf in QUANTITY_FIELDS:
        return quantity_text(number)
    if any(leaf.endswith(part) for part in PERCENT_FIELDS):
        return percent_text(number)
    if any(leaf.endswith(part) for part in PRICE_FIELDS):
        return price_text(number)
    if any(leaf.endswith(part) for part in MONEY_FIELDS):
        return money_text(number)
    if isinstance(value, str):
        return value
    return format_number(number)


def flatten(value, prefix: str = "") -> dict[str, object]:
    """A JSON value as dotted field names: {"a": {"b": 1}} → {"a.b": 1}; lists by index."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out |= flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list):
        out = {}
        for i, inner in enumerate(value):
            out |= flatten(inner, f"{prefix}[{i + 1}]")
        return out
    return {prefix or "value": value}


def change_rows(before, after) -> list[tuple[str, str | None, str]]:
    """An audit entry's or a proposal's change as (field, before, after) rows of text, the
    before None where there was none: "mmr: 0.40% → 0.50%", never a Python dict."""
    old = flatten(before) if before is not None else {}
    new = flatten(after) if after is not None else {}
    rows = []
    for name in list(dict.fromkeys([*old, *new])):
        was = field_text(name, old[name]) if name in old else None
        now = field_text(name, new[name]) if name in new else MISSING
        rows.append((name.replace("_", " "), None if was == now else was, now))
    return rows


def change_text(before, after) -> str:
    """The rows on one line (a CSV cell): "field: before → after; field: value"."""
    return "; ".join(
        f"{name}: {was} → {now}" if was is not None else f"{name}: {now}"
        for name, was, now in change_rows(before, after)
    )

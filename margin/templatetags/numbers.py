"""The number policy as template filters (`margin.numbers` holds the rules): every page prints
figures through these; numbers stay Decimals until here.

    {{ x|money }} 12,345.68      {{ x|money:"USDT" }} 12,345.68 USDT
    {{ x|price:instrument.tick_size }}   {{ x|quantity:instrument.step_size }}   {{ x|percent }}
"""

from django import template

from margin.numbers import (
    change_rows,
    is_missing,
    money_text,
    percent_text,
    price_text,
    quantity_text,
    rate_percent_text,
    signed_money_text,
)

register = template.Library()


@register.filter
def money(value, unit: str | None = None) -> str:
    return money_text(value, unit)


@register.filter
def signed_money(value, unit: str | None = None) -> str:
    return signed_money_text(value, unit)


@register.filter
def price(value, tick=None) -> str:
    return price_text(value, tick)


@register.filter
def quantity(value, step=None) -> str:
    return quantity_text(value, step)


@register.filter
def percent(value) -> str:
    return percent_text(value)


@register.filter
def sign_class(value) -> str:
    """The CSS class of a gain (pos) or a loss (neg)."""
    if is_missing(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


@register.filter
def changes(before, after=None) -> list[tuple[str, str | None, str]]:
    """`{% for field, was, now in entry.before|changes:entry.after %}`: readable rows."""
    return change_rows(before, after)


@register.filter
def fields(value) -> list[tuple[str, str | None, str]]:
    """`{% for field, _, text in proposal.payload|fields %}`: a record's fields, readable."""
    return change_rows(None, value)


@register.filter
def rate_percent(value) -> str:
    return rate_percent_text(value)


@register.filter
def lookup(mapping: dict, key):
    """`mapping[key]`, or None: a row's entry in a figure keyed by symbol."""
    return mapping.get(key) if mapping else None

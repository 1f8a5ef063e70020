"""What any input may hold, said once: the length of free text, the characters text may carry,
the dates a filter may name, the depth of a JSON body and the numbers a column can store.

The forms, the serializers, the API's JSON parser and the request guard all read these, so a
bad input is refused (4xx) where it enters instead of failing in the database (500).
"""

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator, MaxValueValidator, MinValueValidator
from django.db import models

# Every free text a desk member writes (case notes, resolutions, margin-call messages, proposal
# reasons, decision notes): long enough for a paragraph of reasoning, short enough for an e-mail.
FREE_TEXT_MAX_LENGTH = 2000
FREE_TEXT = {"max_length": FREE_TEXT_MAX_LENGTH}

# Deeper than any request this API takes (a parameter change nests 4 levels), far below
# Python's recursion limit.
JSON_MAX_DEPTH = 32

# C0 controls but tab, line feed and carriage return; DEL and the C1 controls; lone surrogates
# (PostgreSQL cannot store them, e-mail cannot carry them; a NUL truncates text in C code).
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# Dates a filter or a schedule may name: the ledger starts after 2000, and a day past 2099 is a
# typing error (9999-12-31 + one day overflows Python's datetime).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
DATE_VALIDATORS = [MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)]
TIME_VALIDATORS = [MinValueValidator(EARLIEST_TIME), MaxValueValidator(LATEST_TIME)]

# Scenario options kept as text in a run's JSON (no column): what the engine takes sensibly.
SHOCK = {"max_digits": 12, "decimal_places": 6}
MINUTES = {"max_digits": 12, "decimal_places": 2}
DEPTH_USD = {"max_digits": 20, "decimal_places": 2}

# A scenario the desk's page runs (upload or paste, `manage.py run_scenario`'s format): it runs
# inside the request, so the file is at most 1 MiB (the shipped example is 2 KiB; a pasted
# text above Django's 2.5 MB body limit is a 400 before any form sees it) and the book and the
# price path stay small enough to answer in seconds. Bigger ones: the command.
SCENARIO_MAX_BYTES = 1_048_576
SCENARIO_MAX_ACCOUNTS = 50
SCENARIO_MAX_STEPS = 60

NUMBER_OUT_OF_RANGE = "A number is out of the range the engine computes with."

# PostgreSQL's `integer`, the column of PositiveIntegerField.
INTEGER_COLUMN_MAX = 2_147_483_647


def has_forbidden_characters(text: str) -> bool:
    return FORBIDDEN_CHARACTERS.search(text) is not None


class JsonRefused(ValueError):
    """JSON this site does not take (the message says why, without a leading capital)."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonRefused(f"the number {text[:40]} is too large")
    return number


def _no_constant(name: str):
    raise JsonRefused(f"{name} is not a number this site takes")


def _check_json_value(value) -> None:
    """Refuse nesting deeper than JSON_MAX_DEPTH and text with control characters (iterative:
    the check itself must not recurse)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > JSON_MAX_DEPTH:
                raise JsonRefused(f"it nests deeper than {JSON_MAX_DEPTH} levels")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None and has_forbidden_characters(key):
                    raise JsonRefused("a name in it holds control characters")
                pending.append((child, depth + 1))
        elif isinstance(item, str) and has_forbidden_characters(item):
            raise JsonRefused("text in it holds control characters")


def json_loads_bounded(text: str):
    """`json.loads` within the limits: a document nested deeper than JSON_MAX_DEPTH (Python's
    decoder would otherwise die with a RecursionError: a 500), a number that is not finite
    (`NaN`, `Infinity`, or `1e400`, which Python reads as infinity) and a string carrying
    control characters raise `JsonRefused`; malformed JSON raises `json.JSONDecodeError` (a
    ValueError too)."""
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise JsonRefused(f"it nests deeper than {JSON_MAX_DEPTH} levels") from None
    _check_json_value(data)
    return data


def column_digits(model: type[models.Model], name: str) -> dict:
    """`max_digits` and `decimal_places` of a DecimalField column (an integer column: 10, 0),
    for a form or serializer field that must accept only what the column stores."""
    field = model._meta.get_field(name)
    if isinstance(field, models.DecimalField):
        return {"max_digits": field.max_digits, "decimal_places": field.decimal_places}
    return {"max_digits": len(str(INTEGER_COLUMN_MAX)), "decimal_places": 0}


def column_validators(model: type[models.Model], name: str) -> list:
    """Validators refusing a Decimal its column cannot store (digits, places, integer range)."""
    digits = column_digits(model, name)
    validators = [DecimalValidator(**digits)]
    if digits["decimal_places"] == 0:
        validators.append(MaxValueValidator(INTEGER_COLUMN_MAX))
    return validators


def check_fits_column(model: type[models.Model], name: str, number: Decimal) -> None:
    """Raise ValidationError unless the column `model.name` stores `number` (trailing zeros,
    as in a serializer's quantized '0.300000000000000000', do not count)."""
    if not number.is_finite():
        raise ValidationError("Enter a finite number.", code="invalid")
    for validator in column_validators(model, name):
        validator(number.normalize())

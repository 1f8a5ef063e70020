"""What any input may hold, said once: the length of free text, the characters text may carry,
the dates a filter may name, the depth of a JSON body and the numbers a column can store.

The forms, the serializers, the API's JSON parser and the request guard all read these, so a
bad input is refused (4xx) where it enters instead of failing in the database (500).
"""

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

NUMBER_OUT_OF_RANGE = "A number is out of the range the engine computes with."

# PostgreSQL's `integer`, the column of PositiveIntegerField.
INTEGER_COLUMN_MAX = 2_147_483_647


def has_forbidden_characters(text: str) -> bool:
    return FORBIDDEN_CHARACTERS.search(text) is not None


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

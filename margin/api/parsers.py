"""The API's JSON parser: DRF's, with the limits of `margin.input_limits` applied to the body.

A body nested deeper than JSON_MAX_DEPTH (Python's decoder would otherwise die with a
RecursionError: a 500), a number that is not finite (`NaN`, `Infinity`, or `1e400`, which
Python reads as infinity) and a string carrying control characters are refused with a 400
before any view sees them.
"""

import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from margin.input_limits import JSON_MAX_DEPTH, has_forbidden_characters


class _Refused(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Refused(f"The number {text[:40]} is too large.")
    return number


def _no_constant(name: str):
    raise _Refused(f"{name} is not a number this API takes.")


def check_json_value(value) -> None:
    """Refuse nesting deeper than JSON_MAX_DEPTH and text with control characters (iterative:
    the check itself must not recurse)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > JSON_MAX_DEPTH:
                raise _Refused(f"The body nests deeper than {JSON_MAX_DEPTH} levels.")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None and has_forbidden_characters(key):
                    raise _Refused("A name in the body holds control characters.")
                pending.append((child, depth + 1))
        elif isinstance(item, str) and has_forbidden_characters(item):
            raise _Refused("Text in the body holds control characters.")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
            check_json_value(data)
        except _Refused as refusal:
            raise ParseError(f"JSON parse error - {refusal}") from None
        except RecursionError:
            raise ParseError(
                f"JSON parse error - the body nests deeper than {JSON_MAX_DEPTH} levels."
            ) from None
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, huge integers
            raise ParseError(f"JSON parse error - {error}") from None
        return data

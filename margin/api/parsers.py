"""The API's JSON parser: DRF's, with the limits of `margin.input_limits` applied to the body
(`json_loads_bounded`: too deep, a number that is not finite, control characters), refused
with a 400 before any view sees them."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from margin.input_limits import JsonRefused, json_loads_bounded


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json_loads_bounded(text)
        except JsonRefused as refusal:
            raise ParseError(f"JSON parse error - the body is refused: {refusal}.") from None
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, huge integers
            raise ParseError(f"JSON parse error - {error}") from None
        return data

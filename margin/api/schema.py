"""The OpenAPI schema: every operation documents its problem answers and the Idempotency-Key."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from margin.api.idempotency import HEADER, KEY_PATTERN
from margin.api.problems import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with the messages of each refused field."""

    type = serializers.CharField(help_text="Stable URI of the problem kind; ends with its slug.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages, keyed by the field's path (`account.positions[0].side`).",
    )


ALWAYS = {"401": "Not authenticated", "403": "Not allowed", "429": "Throttled"}
WITH_BODY = {"400": "Invalid request", "415": "Unsupported media type"}
WITH_KEY = {"422": "Idempotency-Key reused with another request"}
NOT_FOUND = {"404": "Not found (also: not yours)"}


class ProblemAutoSchema(AutoSchema):
    def _idempotency(self):
        handler = getattr(self.view, self.method.lower(), None)
        return getattr(handler, "idempotency_required", None)

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        required = self._idempotency()
        if required is not None:
            parameters = [
                *parameters,
                OpenApiParameter(
                    HEADER,
                    type={"type": "string", "pattern": KEY_PATTERN, "maxLength": 100},
                    location=OpenApiParameter.HEADER,
                    required=required,
                    description="The same key with the same request replays the first answer; "
                    "with another request it is refused (422).",
                ),
            ]
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        problems = dict(ALWAYS)
        if (
            self.method in ("POST", "PUT", "PATCH")
            or self._has_query_parameters()
            or self._declared_query_parameters()
        ):
            problems |= WITH_BODY if self.method != "GET" else {"400": "Invalid request"}
        if self._idempotency() is not None:
            problems |= WITH_KEY | {"400": "Invalid request"}
        if "{" in self.path or self._is_list_view() or self._has_query_parameters():
            problems |= NOT_FOUND
        for code, description in problems.items():
            if code not in responses:
                response = self._get_response_for_code(
                    ProblemSerializer, code, media_types=[PROBLEM_CONTENT_TYPE]
                )
                responses[code] = response | {"description": description}
        return responses

    def _has_query_parameters(self) -> bool:
        return bool(self._get_filter_parameters() or self._get_pagination_parameters())

    def _declared_query_parameters(self) -> bool:
        """Query parameters of `extend_schema(parameters=...)`: a serializer of them (the
        options chain's filters), or OpenApiParameters in the query."""
        return any(
            not isinstance(parameter, OpenApiParameter)
            or parameter.location == OpenApiParameter.QUERY
            for parameter in self.get_override_parameters()
        )


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer"
        )

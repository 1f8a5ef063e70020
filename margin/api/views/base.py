from rest_framework.views import APIView


class ApiView(APIView):
    """What the API's views share."""

    @property
    def describing(self) -> bool:
        """True while drf-spectacular builds the schema (no user, no URL arguments)."""
        return getattr(self, "swagger_fake_view", False)

    def parsed(self, serializer_class):
        """The request body checked by `serializer_class` (a 400 with per-field errors)."""
        parsed = serializer_class(data=self.request.data)
        parsed.is_valid(raise_exception=True)
        return parsed

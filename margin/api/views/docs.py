"""The schema, Swagger UI and ReDoc, served from our own static files under the nonce CSP."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)


@extend_schema(exclude=True)
class SchemaView(SpectacularAPIView):
    pass


class SwaggerView(SpectacularSwaggerSplitView):
    """The page loads every script from us (the init script through `?script`) with the nonce."""

    template_name = "api/swagger_ui.html"


class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

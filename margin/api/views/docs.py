"""The schema, Swagger UI and ReDoc, served from our own static files under the nonce CSP."""

from django.conf import settings
from django.utils.decorators import method_decorator
from django.views.decorators.csp import csp_override
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

# ReDoc's bundle injects two fixed <style> elements while it loads, before any nonce can be
# handed to it (one empty, one with its scrollbar CSS): they are allowed by hash, on this page
# only. A new sidecar version with other CSS fails the browser test that watches violations.
REDOC_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]
# Its sidebar always shows the vendor's logo from their CDN (an image, no script).
REDOC_LOGO = "https://cdn.redoc.ly"
REDOC_CSP = settings.SECURE_CSP | {
    "style-src": [*settings.SECURE_CSP["style-src"], *REDOC_STYLE_HASHES],
    "img-src": [*settings.SECURE_CSP["img-src"], REDOC_LOGO],
}


@extend_schema(exclude=True)
class SchemaView(SpectacularAPIView):
    pass


class SwaggerView(SpectacularSwaggerSplitView):
    """The page loads every script from us (the init script through `?script`) with the nonce."""

    template_name = "api/swagger_ui.html"


@method_decorator(csp_override(REDOC_CSP), name="dispatch")
class RedocView(SpectacularRedocView):
    """ReDoc gets the nonce for the styles it injects from `static/api/redoc-init.js`."""

    template_name = "api/redoc.html"

from django.urls import path, re_path

from margin.api.problems import problem_response
from margin.api.views import docs, me, quote


def unknown_path(request, rest: str = ""):
    """Paths under /api/v1/ that match nothing (a malformed id too) answer a problem 404."""
    return problem_response(slug="not-found", status=404, detail="No such resource.")


app_name = "api"
urlpatterns = [
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.SwaggerView.as_view(url_name="api:schema"), name="swagger"),
    path("redoc/", docs.RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("me/", me.MeView.as_view(), name="me"),
    path("quote/", quote.QuoteView.as_view(), name="quote"),
    re_path(r"^(?P<rest>.*)$", unknown_path, name="unknown"),
]

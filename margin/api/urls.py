from django.urls import path, re_path

from margin.api.problems import problem_response
from margin.api.views import accounts, docs, me, operations, quote


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
    path("accounts/", accounts.AccountList.as_view(), name="accounts"),
    path("accounts/<int:account_id>/", accounts.AccountDetail.as_view(), name="account"),
    path("accounts/<int:account_id>/deposits/", operations.Deposits.as_view(), name="deposits"),
    path(
        "accounts/<int:account_id>/withdrawals/",
        operations.Withdrawals.as_view(),
        name="withdrawals",
    ),
    path("accounts/<int:account_id>/orders/", operations.Orders.as_view(), name="orders"),
    path("accounts/<int:account_id>/history/", accounts.History.as_view(), name="history"),
    path("accounts/<int:account_id>/positions/", accounts.PositionList.as_view(), name="positions"),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/",
        accounts.PositionDetail.as_view(),
        name="position",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/leverage/",
        operations.Leverage.as_view(),
        name="leverage",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/isolated-margin/",
        operations.IsolatedMargin.as_view(),
        name="isolated-margin",
    ),
    path(
        "accounts/<int:account_id>/positions/<str:instrument>/margin-mode/",
        operations.MarginMode.as_view(),
        name="margin-mode",
    ),
    re_path(r"^(?P<rest>.*)$", unknown_path, name="unknown"),
]

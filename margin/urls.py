from django.urls import include, path

from margin.views import desk, trader

trader_patterns = (
    [path("", trader.account_list, name="accounts")],
    "trader",
)
desk_patterns = (
    [path("", desk.landing, name="landing")],
    "desk",
)

urlpatterns = [
    path("accounts/", include(trader_patterns)),
    path("desk/", include(desk_patterns)),
]

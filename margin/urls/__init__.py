from django.urls import include, path

from margin.urls.desk import desk_patterns, public_patterns
from margin.views import trader_history, trader_operations, trader_options, trader_pages

ACCOUNT = "<int:pk>/"
POSITION = "<int:pk>/positions/<str:symbol>/"

trader_patterns = (
    [
        path("", trader_pages.account_list, name="accounts"),
        path("open/", trader_pages.account_open, name="account_open"),
        path(ACCOUNT, trader_pages.account_detail, name="account"),
        path(f"{ACCOUNT}live/", trader_pages.live_fragment, name="live"),
        path(f"{ACCOUNT}explain/", trader_pages.explain_fragment, name="explain"),
        path(f"{ACCOUNT}what-if/", trader_pages.whatif_fragment, name="whatif"),
        path(f"{ACCOUNT}charts.json", trader_pages.chart_data, name="charts"),
        path(f"{ACCOUNT}history/", trader_history.history, name="history"),
        path(f"{ACCOUNT}options/", trader_options.options_page, name="options"),
        path(f"{ACCOUNT}options/book/", trader_options.options_book_fragment, name="options_book"),
        path(
            f"{ACCOUNT}options/chain/", trader_options.options_chain_fragment, name="options_chain"
        ),
        path(
            f"{ACCOUNT}notices/acknowledge/",
            trader_history.notices_acknowledge,
            name="notices_acknowledge",
        ),
        path(
            f"{ACCOUNT}<slug:name>/",
            trader_operations.operation_view,
            name="operation",
        ),
        path(
            f"{POSITION}<slug:name>/",
            trader_operations.operation_view,
            name="position_operation",
        ),
        path("notifications/", trader_history.notifications, name="notifications"),
        path("notifications/badge/", trader_history.notification_badge, name="badge"),
        path("notifications/read/", trader_history.notifications_read, name="notifications_read"),
    ],
    "trader",
)

urlpatterns = [
    path("accounts/", include(trader_patterns)),
    path("desk/", include(desk_patterns)),
    *public_patterns,
]

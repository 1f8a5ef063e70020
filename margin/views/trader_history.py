"""The account's history (ledger entries, fills, state changes, margin calls; filtered, paged)
and the trader's notifications (the top bar's badge and the list)."""

from datetime import UTC, datetime, time, timedelta

from django.core.paginator import Paginator
from django.views.decorators.http import require_POST

from accounts.access import trader_required
from margin.forms.trader import HistoryFilterForm
from margin.selectors.accounts import account_history, notifications_of, unread_notifications
from margin.services.notifications import notifications_acknowledge, notifications_mark_read
from margin.views.rendering import (
    query_without_page,
    render_page_or_fragment,
    render_partial,
)
from margin.views.trader_common import with_account

HISTORY = "margin/account_history.html"
NOTIFICATIONS = "margin/notifications.html"
PAGE_SIZE = 50


def _bounds(filters: dict) -> dict:
    """The filter's days as times: from the start of `since` to the end of `until` (UTC)."""
    day = timedelta(days=1)
    bounds = {}
    if filters.get("since"):
        bounds["since"] = datetime.combine(filters["since"], time.min, tzinfo=UTC)
    if filters.get("until"):
        bounds["until"] = datetime.combine(filters["until"], time.min, tzinfo=UTC) + day
    return bounds


@with_account
def history(request, account):
    form = HistoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    kind = filters.get("kind") or "ledger"
    page = Paginator(account_history(account, kind, _bounds(filters)), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "account": account,
        "form": form,
        "kind": kind,
        "page": page,
        "query": query_without_page(request),
    }
    # A filter that does not parse (a date out of range) shows its error, answered as a 400.
    status = 400 if form.is_bound and form.errors else 200
    return render_page_or_fragment(request, HISTORY, "history-table", context, status=status)


@trader_required
def notifications(request):
    page = Paginator(notifications_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_fragment(request, NOTIFICATIONS, "notification-list", {"page": page})


@trader_required
def notification_badge(request):
    unread = unread_notifications(request.user).count()
    return render_partial(request, NOTIFICATIONS, "badge", {"unread": unread})


@require_POST
@trader_required
def notifications_read(request):
    notifications_mark_read(user=request.user)
    page = Paginator(notifications_of(request.user), PAGE_SIZE).get_page(1)
    response = render_partial(request, NOTIFICATIONS, "notification-list", {"page": page})
    response["HX-Trigger"] = "notifications-read"
    return response


@require_POST
@with_account
def notices_acknowledge(request, account):
    notifications_acknowledge(user=request.user, account=account)
    response = render_partial(
        request, "margin/account_detail.html", "notices", {"account": account, "notices": []}
    )
    response["HX-Trigger"] = "notifications-read"
    return response

"""The account's history (ledger entries, fills, state changes, margin calls; filtered, paged)
and the trader's notifications (the top bar's badge and the list)."""

from datetime import UTC, datetime, time, timedelta

from django.core.paginator import Paginator
from django.views.decorators.http import require_POST

from accounts.access import trader_required
from margin.forms.trader import HistoryFilterForm
from margin.models import AccountEvent, Fill, Notification
from margin.selectors.ledger import ledger_history
from margin.selectors.market import unread_notifications
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


def _dated(queryset, field: str, bounds: dict):
    if "since" in bounds:
        queryset = queryset.filter(**{f"{field}__gte": bounds["since"]})
    if "until" in bounds:
        queryset = queryset.filter(**{f"{field}__lt": bounds["until"]})
    return queryset


def _history_rows(account, kind: str, filters: dict):
    """Each kind of history, newest first, with what its rows print joined in."""
    bounds = _bounds(filters)
    if kind == "fills":
        rows = Fill.objects.filter(position__margin_account=account).select_related(
            "position__instrument"
        )
        return _dated(rows.order_by("-pk"), "created_at", bounds)
    if kind == "states":
        rows = AccountEvent.objects.filter(account=account)
        return _dated(rows.order_by("-at", "-pk"), "at", bounds)
    if kind == "calls":
        rows = Notification.objects.filter(account=account)
        return _dated(rows.order_by("-created_at", "-pk"), "created_at", bounds)
    return ledger_history(account=account, filters=bounds)


@with_account
def history(request, account):
    form = HistoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    kind = filters.get("kind") or "ledger"
    page = Paginator(_history_rows(account, kind, filters), PAGE_SIZE).get_page(
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


def _notifications_of(user):
    return Notification.objects.filter(user=user).select_related("account")


@trader_required
def notifications(request):
    page = Paginator(_notifications_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_fragment(request, NOTIFICATIONS, "notification-list", {"page": page})


@trader_required
def notification_badge(request):
    unread = unread_notifications(request.user).count()
    return render_partial(request, NOTIFICATIONS, "badge", {"unread": unread})


@require_POST
@trader_required
def notifications_read(request):
    notifications_mark_read(user=request.user)
    page = Paginator(_notifications_of(request.user), PAGE_SIZE).get_page(1)
    response = render_partial(request, NOTIFICATIONS, "notification-list", {"page": page})
    response["HX-Trigger"] = "notifications-read"
    return response


def account_notices(user, account) -> list[Notification]:
    """What the account's page shows until the trader acknowledges it: every unread notice on
    the account (the desk's actions, margin calls, liquidations), newest first."""
    return list(unread_notifications(user).filter(account=account)[:20])


@require_POST
@with_account
def notices_acknowledge(request, account):
    notifications_acknowledge(user=request.user, account=account)
    response = render_partial(
        request, "margin/account_detail.html", "notices", {"account": account, "notices": []}
    )
    response["HX-Trigger"] = "notifications-read"
    return response

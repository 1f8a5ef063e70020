"""Prices on the desk: every index and mark now (stale or uncertain, and why) and the log of
the quotes the price guard did not count as printed (venue, price, reason, time)."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from accounts.access import desk_required
from margin.selectors.market import guard_events, index_prices, mark_prices
from margin.selectors.parameters import parameters_in_force
from margin.views.rendering import query_without_page
from margin.vocabulary import GuardRejectionReason


@desk_required
def prices(request):
    now = timezone.now()
    version = parameters_in_force(now)
    max_age_s = version.price_guard_max_age_s
    events = guard_events(
        symbol=request.GET.get("symbol", "").strip().upper(),
        source=request.GET.get("source", "").strip(),
        reason=request.GET.get("reason", ""),
    )
    return render(
        request,
        "desk/prices.html",
        {
            "version": version,
            "indexes": index_prices(now=now, max_age_s=max_age_s),
            "marks": mark_prices(now=now, max_age_s=max_age_s),
            "page": Paginator(events, 100).get_page(request.GET.get("page")),
            "reasons": GuardRejectionReason.choices,
            "query": query_without_page(request),
        },
    )

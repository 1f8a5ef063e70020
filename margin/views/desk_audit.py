"""The audit trail: filtered, paged, and exported whole as streaming CSV."""

import csv

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render

from accounts.access import desk_required
from margin.filters import AuditFilter
from margin.numbers import change_text
from margin.selectors.desk import audit_entries
from margin.views.rendering import query_without_page

CSV_COLUMNS = ("id", "at", "actor", "action", "account", "subject", "change", "reason")


def _filtered(request) -> AuditFilter:
    return AuditFilter(request.GET, queryset=audit_entries())


@desk_required
def audit(request):
    audit_filter = _filtered(request)
    page = Paginator(audit_filter.qs, 100).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/audit.html",
        {"filter": audit_filter, "page": page, "query": query_without_page(request)},
        # A filter that does not parse (a time out of range) shows its error, as a 400.
        status=400 if audit_filter.is_bound and audit_filter.errors else 200,
    )


class _Echo:
    """A file whose write returns the line: csv.writer then yields rows one by one."""

    def write(self, value: str) -> str:
        return value


def _csv_rows(entries):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries.iterator(chunk_size=2000):
        yield writer.writerow(
            (
                entry.pk,
                entry.at.isoformat(),
                entry.actor.username if entry.actor else "system",
                entry.action,
                entry.margin_account_id or "",
                entry.subject,
                change_text(entry.before, entry.after),
                entry.reason,
            )
        )


@desk_required
def audit_csv(request):
    entries = _filtered(request).qs.order_by("pk")
    response = StreamingHttpResponse(_csv_rows(entries), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response

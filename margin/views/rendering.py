"""Page-or-fragment rendering shared by the trader and desk views: htmx asks for one
`{% partialdef %}` of a page's template, a plain request (or htmx restoring history) for the
whole page."""

from django.shortcuts import render


def wants_fragment(request) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_partial(request, template: str, partial: str, context: dict, *, status: int = 200):
    """Only the named `{% partialdef %}` of the page's template."""
    return render(request, f"{template}#{partial}", context, status=status)


def render_page_or_fragment(
    request, template: str, partial: str, context: dict, *, status: int = 200
):
    """The whole page, or just `partial` when htmx asks (the polled and filtered fragments)."""
    if wants_fragment(request):
        return render_partial(request, template, partial, context, status=status)
    return render(request, template, context, status=status)


def query_without_page(request) -> str:
    """The request's query string less its page number: what a pager's links start from."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()

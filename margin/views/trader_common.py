"""What every trader view shares: the account access check and page-or-fragment rendering."""

from functools import wraps

from django.shortcuts import render

from accounts.access import trader_required
from margin.selectors import account_of_user_or_404


def with_account(view):
    """Pass the URL's account to the view, or answer 404 when it is not the user's: every trader
    view that names an account goes through here and only here."""

    @trader_required
    @wraps(view)
    def guarded(request, pk: int, *args, **kwargs):
        account = account_of_user_or_404(request.user, pk)
        return view(request, account, *args, **kwargs)

    return guarded


def wants_fragment(request) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_partial(request, template: str, partial: str, context: dict, *, status: int = 200):
    """Only the named `{% partialdef %}` of the page's template."""
    return render(request, f"{template}#{partial}", context, status=status)


def render_page_or_fragment(request, template: str, partial: str, context: dict):
    """The whole page, or just `partial` when htmx asks (the polled and filtered fragments)."""
    if wants_fragment(request):
        return render_partial(request, template, partial, context)
    return render(request, template, context)

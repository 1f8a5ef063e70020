"""What every trader view shares: the account access check and the dashboard's template."""

from functools import wraps

from accounts.access import trader_required
from margin.selectors.accounts import account_of_user_or_404

DASHBOARD = "margin/account_detail.html"


def with_account(view):
    """Pass the URL's account to the view, or answer 404 when it is not the user's: every trader
    view that names an account goes through here and only here."""

    @trader_required
    @wraps(view)
    def guarded(request, pk: int, *args, **kwargs):
        account = account_of_user_or_404(request.user, pk)
        return view(request, account, *args, **kwargs)

    return guarded

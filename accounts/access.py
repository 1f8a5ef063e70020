"""Who may reach which page: the decorators every view uses."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from accounts.roles import APPROVE, PROPOSE, TRADE, USE_DESK


def _requires(permission: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def guarded(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded

    return decorator


trader_required = _requires(TRADE)
desk_required = _requires(USE_DESK)
proposer_required = _requires(PROPOSE)
approver_required = _requires(APPROVE)

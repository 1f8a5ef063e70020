from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from accounts.roles import TRADE, USE_DESK


@login_required
def home(request):
    """Each role lands where its day starts: traders on their accounts, the desk on its queue."""
    if request.user.has_perm(USE_DESK):
        return redirect("desk:landing")
    if request.user.has_perm(TRADE):
        return redirect("trader:accounts")
    return redirect("password_change")

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.authentication import api_token_create, api_token_revoke, api_tokens_of
from accounts.models import ApiToken
from accounts.roles import TRADE, USE_DESK


@login_required
def home(request):
    """Each role lands where its day starts: traders on their accounts, the desk on its queue."""
    if request.user.has_perm(USE_DESK):
        return redirect("desk:landing")
    if request.user.has_perm(TRADE):
        return redirect("trader:accounts")
    return redirect("password_change")


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=64, label="What is it for", initial="trading bot")


@login_required
def api_tokens(request):
    """The user's API tokens; a new token's secret is shown on this answer only."""
    created = None
    form = ApiTokenForm()
    if request.method == "POST":
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            record, secret = api_token_create(user=request.user, name=form.cleaned_data["name"])
            created = {"record": record, "secret": secret}
            form = ApiTokenForm()
    return render(
        request,
        "accounts/api_tokens.html",
        {"tokens": api_tokens_of(user=request.user), "form": form, "created": created},
    )


@login_required
@require_POST
def api_token_revoke_view(request, pk: int):
    try:
        record = api_token_revoke(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404("No such token") from None
    messages.success(request, f"Token “{record.name}” ({record.prefix}…) revoked.")
    return redirect("api_tokens")

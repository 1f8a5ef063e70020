import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.authentication import api_token_create, api_token_revoke, api_tokens_of
from accounts.forms import CodeForm, LoginForm
from accounts.models import ApiToken
from accounts.roles import TRADE, USE_DESK
from accounts.second_factor import (
    authenticator_of,
    is_second_factor_verified,
    needs_second_factor,
    recovery_codes_issue,
    second_factor_verify,
    secret_text,
    totp_enrolment_confirm,
    totp_enrolment_start,
)


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
        {
            "tokens": api_tokens_of(user=request.user),
            "form": form,
            "created": created,
            "second_factor": needs_second_factor(request.user),
        },
        status=400 if form.errors else 200,
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


class LoginView(auth_views.LoginView):
    """The password step. A malformed field (empty, too long) answers 400; wrong credentials
    re-show the form as Django does."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(name in form.fields for name in form.errors):
            response.status_code = 400
        return response


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else reverse("home")


def _throttle_message(user) -> str | None:
    """How long django-otp holds the authenticator after wrong codes, said in seconds."""
    device = authenticator_of(user)
    allowed, data = device.verify_is_allowed() if device else (True, None)
    if allowed or not data or not data.get("locked_until"):
        return None
    wait_s = max(1, int((data["locked_until"] - timezone.now()).total_seconds()) + 1)
    return f"Too many wrong codes: wait {wait_s} s before the next try."


@login_required
def second_factor(request):
    """The second step of a desk login: a code from the authenticator, or a recovery code."""
    user = request.user
    if not needs_second_factor(user) or is_second_factor_verified(user):
        return redirect(_next_url(request))
    if authenticator_of(user) is None:
        return redirect(f"{reverse('second_factor_enrol')}?next={_next_url(request)}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        throttled = _throttle_message(user)
        if throttled is None and second_factor_verify(
            request=request, code=form.cleaned_data["code"]
        ):
            return redirect(_next_url(request))
        form.add_error(
            "code", throttled or "That code is not valid, or was already used: try the next one."
        )
    return render(
        request,
        "registration/second_factor.html",
        {"form": form, "next": _next_url(request)},
        status=400 if form.errors else 200,
    )


def _pending_authenticator(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


@login_required
def second_factor_enrol(request):
    """Set up (or replace) the authenticator: the secret and its QR code are shown with a fresh
    secret each time; a correct code confirms it and shows ten recovery codes, once."""
    user = request.user
    if not needs_second_factor(user):
        return redirect("home")
    if authenticator_of(user) is not None and not is_second_factor_verified(user):
        # Replacing an authenticator needs the current one first.
        return redirect(f"{reverse('second_factor')}?next={reverse('second_factor_enrol')}")
    form = CodeForm(request.POST or None)
    device = _pending_authenticator(user) if request.method == "POST" else None
    if device is not None and form.is_valid():
        codes = totp_enrolment_confirm(request=request, code=form.cleaned_data["code"])
        if codes is not None:
            return render(
                request,
                "registration/recovery_codes.html",
                {"codes": codes, "next": _next_url(request)},
            )
        form.add_error("code", "That code does not match: check the device's clock and retry.")
    if device is None:
        device = totp_enrolment_start(user=user)
        form = CodeForm()
    context = {
        "form": form,
        "secret": secret_text(device),
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=4),
        "next": _next_url(request),
    }
    return render(
        request,
        "registration/second_factor_enrol.html",
        context,
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def recovery_codes_renew(request):
    """Ten new recovery codes (the old ones stop working), for a verified desk member."""
    if not needs_second_factor(request.user) or not is_second_factor_verified(request.user):
        raise Http404("No second factor on this login")
    codes = recovery_codes_issue(user=request.user)
    return render(
        request, "registration/recovery_codes.html", {"codes": codes, "next": reverse("home")}
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's; a refused form answers 400."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response

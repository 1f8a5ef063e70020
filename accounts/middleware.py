"""Holds a desk member's session at the second-factor step until a code is given.

After the password, a risk officer, risk manager or admin is logged in but not verified
(`accounts.second_factor`). Until they enter a code (or enrol an authenticator, the first
time), every page answers with a redirect to that step and every API call through the session
answers 403; only the login, logout and second-factor pages and public pages are reachable.
An API call carrying a Bearer token is the token's business (DRF authenticates it or answers
401), so tokens work as before.
"""

from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.second_factor import authenticator_of, is_second_factor_verified, needs_second_factor
from margin.api.problems import problem_response

# Views a half-logged-in desk member may reach (by namespaced view name): the login steps and
# what is public anyway.
OPEN_VIEWS = {
    "login",
    "logout",
    "admin:logout",
    "second_factor",
    "second_factor_enrol",
    "healthz",
    "disclosure",
    "api:parameters",
}
API_PREFIX = "/api/"
REFUSAL = "Enter your second-factor code at /login/verify/ first."


def _bearer(request) -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is not None and match.view_name in OPEN_VIEWS:
            return None
        if request.path.startswith(API_PREFIX) and _bearer(request):
            return None
        user = request.user
        if not needs_second_factor(user) or is_second_factor_verified(user):
            return None
        if request.path.startswith(API_PREFIX):
            return problem_response(slug="forbidden", status=403, detail=REFUSAL)
        step = "second_factor" if authenticator_of(user) else "second_factor_enrol"
        target = f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}"
        if request.htmx:
            # A polled fragment must not swap the code form into the page: htmx navigates.
            response = HttpResponse(status=403)
            response["HX-Redirect"] = target
            return response
        return redirect(target)

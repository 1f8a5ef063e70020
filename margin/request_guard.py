"""Refuses, before any view runs, a request whose path, query string or form fields carry control
characters (`margin.input_limits.FORBIDDEN_CHARACTERS`).

A NUL reaching PostgreSQL is an error in the driver (a 500), and control characters in a margin
call's text would travel on to the trader's notifications and e-mail. JSON bodies are checked by
the API's parser (`margin.api.parsers`); this guard covers what Django itself decodes.
"""

from django.http import Http404, HttpResponseBadRequest

from margin.api.problems import problem_response
from margin.input_limits import has_forbidden_characters

API_PREFIX = "/api/"
REFUSAL = "The address or a field holds control characters."


def _fields_hold_forbidden(query) -> bool:
    return any(
        has_forbidden_characters(key) or any(has_forbidden_characters(v) for v in values)
        for key, values in query.lists()
    )


def _refused(request) -> bool:
    if _fields_hold_forbidden(request.GET):
        return True
    # Only form bodies are decoded here (CSRF reads them anyway); JSON is the parser's.
    return request.method == "POST" and _fields_hold_forbidden(request.POST)


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if has_forbidden_characters(request.path):
            # No URL of this site holds a control character: the address names nothing (404,
            # which every endpoint documents, as the "400/404" allows).
            if request.path.startswith(API_PREFIX):
                return problem_response(slug="not-found", status=404, detail=REFUSAL)
            raise Http404(REFUSAL)
        if _refused(request):
            if request.path.startswith(API_PREFIX):
                return problem_response(slug="invalid-request", status=400, detail=REFUSAL)
            return HttpResponseBadRequest(REFUSAL, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

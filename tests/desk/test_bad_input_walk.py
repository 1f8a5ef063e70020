"""Every write endpoint of the OpenAPI schema and every form the pages show, fed the classes of
bad input an adversarial run found (issue 19): a body nested 100,000 deep, NUL and control
characters, 1 MB of text, Infinity / NaN / 1e400, numbers too big for their column, far dates.
Each must be refused with a 4xx (a page form: a 4xx, or its redirect back with an error
message), never a 500, and nothing may be written.

One field is made bad at a time on an otherwise valid request, so a bad value cannot hide
behind another field's refusal and reach a service or the database.
"""

import json
import uuid
from html.parser import HTMLParser

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from accounts.authentication import api_token_create
from accounts.models import ApiToken
from margin.models import (
    AuditEntry,
    CascadeRun,
    Case,
    CaseNote,
    Entry,
    Fill,
    Journal,
    MarginAccount,
    Notification,
    ParameterVersion,
    Position,
    Proposal,
    ScenarioRun,
    StressRun,
)
from margin.services.desk import case_open
from margin.services.proposals import forced_reduction_propose
from tests.second_factor import SecondFactorClient

pytestmark = pytest.mark.django_db

WRITTEN: tuple[type[Model], ...] = (
    Journal,
    Entry,
    Fill,
    Position,
    MarginAccount,
    Case,
    CaseNote,
    Proposal,
    AuditEntry,
    StressRun,
    CascadeRun,
    ScenarioRun,
    Notification,
    ParameterVersion,
    ApiToken,
)

HUGE_TEXT = "x" * 1_000_000
TEXT_BAD = [HUGE_TEXT, "a\x00b", "a\x1bb", "a\x7fb"]
NUMBER_BAD = [
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" + "0" * 40,  # more digits than any column
    "1" + "0" * 25,  # fits 38 digits, not the 20 whole digits of a money column
    "0." + "0" * 25 + "1",  # more places than any column
    "9" * 5000,
]
# Within a money column, far beyond any real order: booked or refused, but no 500.
STORABLE_LARGE = ["123456789", "99999999999999999999"]
TIME_BAD = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]
DATE_BAD = ["9999-12-31", "0001-01-01", *TIME_BAD]
CHOICE_BAD = ["a\x00", "x" * 10_000]
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


@pytest.fixture
def world(book, officer, officer2, manager):
    """The book, a case on the margin-call account with a pending forced reduction proposed by
    officer2 (the proposal pages and approve/reject), and API clients."""
    account = book["margin_call"]
    case = case_open(account=account, actor=officer2, summary="walk")
    position = account.positions.get(instrument__symbol="BTCUSDT")
    proposal = forced_reduction_propose(
        position=position, quantity=position.quantity / 5, reason="walk", proposer=officer2
    )
    return {"account": account, "quiet": book["warning"], "case": case, "proposal": proposal}


def bearer(user):
    _, token = api_token_create(user=user, name="walk")
    client = Client(raise_request_exception=False)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


# API ----------------------------------------------------------------------------------------


def api_baselines(world, officer) -> dict[str, dict]:
    """A valid body for every write endpoint (by path template), which the walk spoils one field
    at a time. A new write endpoint without one here fails the walk."""
    return {
        "/api/v1/accounts/{account_id}/deposits/": {"asset": "USDT", "amount": "10"},
        "/api/v1/accounts/{account_id}/withdrawals/": {"asset": "USDT", "amount": "1"},
        "/api/v1/accounts/{account_id}/orders/": {
            "instrument": "BTCUSDT",
            "side": "buy",
            "quantity": "0.001",
        },
        "/api/v1/accounts/{account_id}/positions/{instrument}/isolated-margin/": {
            "action": "add",
            "amount": "1",
        },
        "/api/v1/accounts/{account_id}/positions/{instrument}/leverage/": {"leverage": "5"},
        "/api/v1/accounts/{account_id}/positions/{instrument}/margin-mode/": {
            "mode": "isolated",
            "isolated_margin": "100",
        },
        "/api/v1/desk/accounts/{account_id}/cases/": {"summary": "walk"},
        "/api/v1/desk/cascade-runs/": {
            "scenario": "uniform",
            "move": "-0.1",
            "depth_usd": "1000000",
            "max_rounds": 2,
        },
        "/api/v1/desk/cases/{case_id}/assign/": {"assignee": officer.username},
        "/api/v1/desk/cases/{case_id}/close/": {"resolution": "done"},
        "/api/v1/desk/cases/{case_id}/credit-tier-changes/": {"reason": "r", "tier": "standard"},
        "/api/v1/desk/cases/{case_id}/forced-reductions/": {
            "reason": "r",
            "instrument": "BTCUSDT",
            "quantity": "0.1",
        },
        "/api/v1/desk/cases/{case_id}/margin-call/": {"message": "Add collateral"},
        "/api/v1/desk/cases/{case_id}/margin-scheme-changes/": {
            "reason": "r",
            "scheme": "portfolio",
        },
        "/api/v1/desk/cases/{case_id}/notes/": {"body": "note"},
        "/api/v1/desk/cases/{case_id}/reduce-only/": {"reduce_only": True, "reason": "r"},
        "/api/v1/desk/parameter-changes/": {
            "reason": "r",
            "fields": {"warning_ratio": "0.45"},
            "brackets": {"BTCUSDT": [{"floor": "0", "mmr": "0.004", "max_leverage": "125"}]},
            "haircuts": {"BTC": [{"floor": "0", "ratio": "0.95"}]},
            "credit_terms": {"standard": {"haircut_scale": "1", "mm_scale": "1"}},
        },
        "/api/v1/desk/proposals/{proposal_id}/approve/": {"note": "ok"},
        "/api/v1/desk/proposals/{proposal_id}/reject/": {"note": "no"},
        "/api/v1/desk/stress-runs/": {"scenario": "uniform", "move": "-0.1"},
        "/api/v1/quote/": {},
    }


def bad_values_for(schema: dict) -> list:
    kind, fmt = schema.get("type"), schema.get("format")
    if fmt == "decimal":
        return NUMBER_BAD
    if fmt == "date-time":
        return TIME_BAD
    if kind == "integer":
        return [10**40, 2**63, "1e400", "NaN"]
    if kind == "string":
        return TEXT_BAD
    return CHOICE_BAD


def spoiled(body: dict, properties: dict):
    """(label, body) for each property made bad in turn; inside the parameter change's nested
    objects each leaf is spoiled as a number."""
    for name, schema in properties.items():
        if isinstance(body.get(name), dict):
            yield from _spoiled_leaves(body, name)
            continue
        values = bad_values_for(schema)
        # An optional field left out of the valid body: a few values are enough.
        for value in values if name in body else values[:3]:
            yield f"{name}={str(value)[:20]!r}", {**body, name: value}


def _spoiled_leaves(body: dict, name: str):
    def leaves(value, path):
        if isinstance(value, dict):
            for key, child in value.items():
                yield from leaves(child, (*path, key))
        elif isinstance(value, list):
            for n, child in enumerate(value):
                yield from leaves(child, (*path, n))
        else:
            yield path

    for path in leaves(body[name], ()):
        # 123456789 fits a money column, not the 8 whole digits of a ratio one
        for bad in [*NUMBER_BAD, "123456789"]:
            copy = json.loads(json.dumps(body[name]))
            target = copy
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = bad
            yield f"{name}{list(path)}={bad[:20]!r}", {**body, name: copy}


def body_level_probes(body: dict):
    """Raw bodies no serializer field can see: the parser must refuse them."""
    text = json.dumps(body)
    yield "deep JSON", DEEP_JSON
    yield "NaN literal", text[:-1] + (", " if body else "") + '"x": NaN}'
    yield "1e400 literal", text[:-1] + (", " if body else "") + '"x": 1e400}'
    yield "control in a key", text[:-1] + (", " if body else "") + '"a\\u0007": 1}'
    yield "lone surrogate", text[:-1] + (", " if body else "") + '"x": "\\ud800"}'


def test_every_write_endpoint_refuses_every_class_of_bad_input_with_a_4xx(world, officer, manager):
    account, case, proposal = world["account"], world["case"], world["proposal"]
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    trader_api, officer_api, manager_api = bearer(account.owner), bearer(officer), bearer(manager)
    baselines = api_baselines(world, officer)
    path_values = {
        "account_id": account.pk,
        "instrument": "BTCUSDT",
        "case_id": case.pk,
        "proposal_id": proposal.pk,
    }
    failures, probes = [], 0
    writes = [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 20
    for path, method, operation in writes:
        assert path in baselines, f"no valid body for {method.upper()} {path} in the walk"
        body = baselines[path]
        client = trader_api if "/desk/" not in path else officer_api
        if "/proposals/" in path:
            client = manager_api
        url = path.format(**path_values)
        ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        name = ref.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
        properties = components.get(name, {}).get("properties", {}) if name else {}
        before = counts()
        cases = [
            *((label, json.dumps(spoilt)) for label, spoilt in spoiled(body, properties)),
            *body_level_probes(body),
        ]
        if "{instrument}" in path:
            cases.append(("NUL in the path", json.dumps(body)))
        for label, raw in cases:
            target = url.replace("BTCUSDT", "BTC%00USDT") if label == "NUL in the path" else url
            response = client.generic(
                method.upper(),
                target,
                raw,
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            )
            probes += 1
            if not 400 <= response.status_code < 500:
                failures.append(f"{method.upper()} {path} {label}: {response.status_code}")
        after = counts()
        if after != before:
            failures.append(f"{method.upper()} {path} wrote: {before} -> {after}")
        # Large numbers a column stores may be booked or refused, never a 500.
        for name, schema in properties.items():
            if name in body and schema.get("format") == "decimal":
                for large in STORABLE_LARGE:
                    response = client.generic(
                        method.upper(),
                        url,
                        json.dumps({**body, name: large}),
                        content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                    )
                    if response.status_code >= 500:
                        failures.append(f"{method.upper()} {path} {name}={large}: 500")
    print(f"API walk: {len(writes)} write endpoints, {probes} bad requests")
    assert failures == [], "\n".join(failures)


def test_reads_with_far_dates_and_bad_filters_answer_4xx(world, officer, client):
    account = world["account"]
    trader_api = bearer(account.owner)
    history = reverse("api:history", args=[account.pk])
    refused = [
        (trader_api, f"{history}?until=9999-12-31T23:59:59Z"),
        (trader_api, f"{history}?since=0001-01-01T00:00:00Z"),
        (trader_api, f"/api/v1/accounts/{account.pk}/positions/%00/"),
        (trader_api, f"/api/v1/accounts/{account.pk}/positions/?instrument=%07"),
        (trader_api, "/api/v1/options/chain/?underlying=%00"),
        (trader_api, "/api/v1/options/chain/?expiry=0001-01-01T00:00:00%2B14:00"),
    ]
    page_client = SecondFactorClient(raise_request_exception=False)
    page_client.force_login(account.owner)
    refused += [
        (page_client, f"{reverse('trader:history', args=[account.pk])}?until=9999-12-31"),
        (page_client, f"{reverse('trader:history', args=[account.pk])}?since=0001-01-01"),
        (page_client, f"{reverse('trader:account', args=[account.pk])}%00/"),
        (
            page_client,
            f"{reverse('trader:explain', args=[account.pk])}?figure=series.%00.mark_price",
        ),
        (page_client, f"{reverse('trader:explain', args=[account.pk])}?figure=series.nope.delta"),
    ]
    desk_client = SecondFactorClient(raise_request_exception=False)
    desk_client.force_login(officer)
    refused += [
        (desk_client, f"{reverse('desk:audit')}?since=9999-12-31T23:59:59"),
        (desk_client, f"{reverse('desk:landing')}?state=%00"),
    ]
    answers = {url: c.get(url).status_code for c, url in refused}
    assert [url for url, code in answers.items() if not 400 <= code < 500] == [], answers
    # a filter number out of any range is no 500 either
    for query in ("min_ratio=1e400", "min_notional=NaN", "max_notional=" + "9" * 5000):
        assert desk_client.get(f"{reverse('desk:landing')}?{query}").status_code < 500


# Pages --------------------------------------------------------------------------------------


class FormFinder(HTMLParser):
    """The POST forms of a page: where each posts and its fields with their shown values."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            action = a.get("hx-post") or (a.get("action") if a.get("method") == "post" else None)
            self._form = {"actions": [action] if action else [], "fields": {}, "kinds": {}}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "button" and a.get("formaction"):
            self._form["actions"].append(a["formaction"])
        elif tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("radio", "checkbox") and a["name"] in self._form["fields"]:
                return
            self._form["fields"][a["name"]] = a.get("value", "")
            self._form["kinds"][a["name"]] = a.get("type", "text")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form["fields"][a["name"]] = ""
            self._form["kinds"][a["name"]] = "select"
        elif tag == "option" and self._select and not self._form["fields"][self._select]:
            self._form["fields"][self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form["fields"][a["name"]] = ""
            self._form["kinds"][a["name"]] = "textarea"

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_on(html: str) -> list[dict]:
    finder = FormFinder()
    finder.feed(html)
    return [form for form in finder.forms if form["actions"]]


SKIPPED_ACTIONS = ("/logout/",)  # logging out has no input to spoil


def bad_form_values(name: str, kind: str, value: str) -> list[str]:
    if name == "csrfmiddlewaretoken":
        return []
    if kind in ("date", "datetime-local") or name in ("since", "until", "effective_at"):
        return DATE_BAD
    if kind in ("select", "radio", "checkbox", "hidden"):
        return CHOICE_BAD[:1]
    looks_numeric = kind == "number" or value.replace(".", "", 1).lstrip("-").isdigit()
    if looks_numeric or name in ("amount", "quantity", "isolated_margin", "leverage"):
        return NUMBER_BAD
    return TEXT_BAD


def refused_form(response) -> bool:
    """A 4xx, or post/redirect/get back with an error message (the desk's forms)."""
    if 400 <= response.status_code < 500:
        return True
    if response.status_code == 302:
        levels = [m.level for m in get_messages(response.wsgi_request)]
        return message_levels.ERROR in levels
    return False


def test_every_page_form_refuses_every_class_of_bad_input(world, officer, manager, password):
    account, case, proposal = world["account"], world["case"], world["proposal"]
    trader = SecondFactorClient(raise_request_exception=False)
    trader.force_login(account.owner)
    desk = SecondFactorClient(raise_request_exception=False)
    desk.force_login(manager)
    anonymous = Client(raise_request_exception=False)
    half_logged_in = Client(raise_request_exception=False)
    half_logged_in.force_login(officer)
    pages = [
        (anonymous, reverse("login")),
        (half_logged_in, reverse("second_factor_enrol")),
        (trader, reverse("trader:accounts")),
        (trader, reverse("trader:account", args=[account.pk])),
        (trader, reverse("api_tokens")),
        (desk, reverse("desk:account", args=[world["quiet"].pk])),
        (desk, reverse("desk:account", args=[account.pk])),
        (desk, reverse("desk:case", args=[case.pk])),
        (desk, reverse("desk:proposal", args=[proposal.pk])),
        (desk, reverse("desk:parameters")),
        (desk, reverse("desk:stress")),
        (desk, reverse("desk:cascade")),
        (desk, reverse("desk:scenarios")),
        (desk, reverse("password_change")),
    ]
    failures, walked, probes = [], set(), 0
    for client, url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        for form in forms_on(page.content.decode()):
            for action in form["actions"]:
                if action in walked or action.endswith(SKIPPED_ACTIONS):
                    continue
                walked.add(action)
                before = counts()
                for name, value in form["fields"].items():
                    for bad in bad_form_values(name, form["kinds"][name], value):
                        response = client.post(action, {**form["fields"], name: bad})
                        probes += 1
                        if not refused_form(response):
                            failures.append(f"{action} {name}={bad[:20]!r}: {response.status_code}")
                after = counts()
                if after != before:
                    failures.append(f"{action} wrote: {before} -> {after}")
                # Large numbers a column stores may be booked or refused, never a 500.
                for name, value in form["fields"].items():
                    if bad_form_values(name, form["kinds"][name], value) is NUMBER_BAD:
                        for large in STORABLE_LARGE:
                            response = client.post(action, {**form["fields"], name: large})
                            if response.status_code >= 500:
                                failures.append(f"{action} {name}={large}: 500")
    print(f"page walk: {len(walked)} form actions, {probes} bad posts")
    assert len(walked) >= 20, sorted(walked)
    assert failures == [], "\n".join(failures)

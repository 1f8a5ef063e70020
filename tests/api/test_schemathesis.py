"""The API fuzzed from its own OpenAPI schema: no server error, no answer outside the schema.

Every operation gets a few generated requests (valid and invalid), sent through the WSGI app
as a trader with a token, or as a risk manager for the desk. Object ids in paths point at real
objects (the trader's own account, a case, a proposal, runs), so the fuzzing reaches the
services instead of stopping at a 404 (the 404s of others' objects have their own tests).
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from margin.models import CreditTier
from margin.services.cascade import cascade_run_start
from margin.services.desk import case_open
from margin.services.proposals import credit_tier_change_propose
from margin.services.stress_runs import stress_run_create
from tests.api.conftest import client_for

# Per operation, after the schema's examples and the coverage phase's boundary and negative
# cases: the whole run stays under three minutes.
MAX_EXAMPLES = 5
# Not checked: a schema-valid request may still be refused by a business rule (an unknown
# asset, a withdrawal above the withdrawable, a reused key); and some schema-invalid input is
# taken leniently rather than refused: DRF's text fields take a JSON number as its text, an
# unparseable `page_size` falls back to the default, django-filter ignores a blank or unknown
# boolean. Server errors and answers outside the schema are all checked.
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


# Requests sent per operation; printed at the end of the module (`pytest -s`) for the report.
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_calls():
    yield
    print(f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} requests")


@pytest.fixture
def wsgi_inside_the_test_transaction():
    """Like Django's test client: requests must not close the connection holding the test's
    transaction (the WSGI handler closes old connections around each request)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def bearer(user) -> dict:
    return {"Authorization": client_for(user)._credentials["HTTP_AUTHORIZATION"]}


@pytest.fixture
def identities(wsgi_inside_the_test_transaction, reference, trader, account, officer, manager):
    """Authorization headers per audience, and the objects the paths should point at: the
    trader's account, a case on it, an officer's pending proposal, a stress and a cascade run."""
    case = case_open(account=account, actor=officer, summary="fuzzing")
    proposal = credit_tier_change_propose(
        account=account, tier=CreditTier.objects.get(code="vip"), reason="fuzz", proposer=officer
    )
    return {
        "trader": bearer(trader),
        "desk": bearer(manager),
        "ids": {
            "account_id": account.pk,
            "case_id": case.pk,
            "proposal_id": proposal.pk,
            "stress-runs": stress_run_create(actor=officer, kind="uniform", options={}).pk,
            "cascade-runs": cascade_run_start(actor=officer, options={}).pk,
        },
    }


def point_at_real_objects(case, ids: dict) -> None:
    """Path ids set to the fixture's objects (a run id by the kind of run in the path)."""
    for name in case.path_parameters or {}:
        if name == "run_id":
            kind = "stress-runs" if "/stress-runs/" in case.path else "cascade-runs"
            case.path_parameters[name] = ids[kind]
        elif name in ids:
            case.path_parameters[name] = ids[name]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_to_its_schema(case, identities):
    # given: throttle counters reset so that every example reaches its view
    cache.clear()
    point_at_real_objects(case, identities["ids"])
    audience = "desk" if case.path.startswith("/api/v1/desk/") else "trader"
    # when / then
    case.call_and_validate(headers=identities[audience], excluded_checks=NOT_CHECKED)
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1

"""The API fuzzed from its own OpenAPI schema: no server error, no answer outside the schema.

Every operation gets a few generated requests (valid and invalid), sent through the WSGI app
as a trader with a token, or as a risk manager for the desk. Object ids in paths point at the
caller's own objects, so the fuzzing reaches the services instead of stopping at a 404 (the
404s of others' objects have their own tests).
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import client_for

# Per operation, after the schema's examples and the coverage phase's boundary and negative
# cases: the whole run stays under three minutes.
MAX_EXAMPLES = 5
# Not checked: a schema-valid request may still be refused by a business rule (an unknown
# asset, a withdrawal above the withdrawable, a reused key), and an unparseable optional query
# value is ignored the way django-filter and DRF's paginator ignore it rather than refused.
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


@pytest.fixture
def identities(wsgi_inside_the_test_transaction, reference, trader, account, manager):
    """Authorization headers per audience, and the ids the paths should point at."""
    return {
        "trader": {"Authorization": client_for(trader)._credentials["HTTP_AUTHORIZATION"]},
        "desk": {"Authorization": client_for(manager)._credentials["HTTP_AUTHORIZATION"]},
        "account_id": account.pk,
    }


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
    if "account_id" in (case.path_parameters or {}):
        case.path_parameters["account_id"] = identities["account_id"]
    audience = "desk" if case.path.startswith("/api/v1/desk/") else "trader"
    # when / then
    case.call_and_validate(headers=identities[audience], excluded_checks=NOT_CHECKED)
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1

import pytest
from django.db import connection

from margin.services.reference import reference_data_ensure
from tests.factories import MarginAccountFactory


@pytest.fixture
def reference(db):
    """Reference data, with the ledger's deferred balance trigger checking every statement:
    a `db` test never commits, so a deferred check would otherwise never run."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return reference_data_ensure()


@pytest.fixture
def account(reference):
    return MarginAccountFactory()

import pytest
from django.db import transaction

from exchange_site.db_routers import REPLICA, ReplicaRouter, replica_reads
from margin.models import MarginSnapshot


@pytest.mark.django_db(transaction=True)
def test_only_reads_a_page_opts_into_outside_a_transaction_go_to_the_replica():
    router = ReplicaRouter()
    # given no opt-in: every read and write on the primary
    assert router.db_for_read(MarginSnapshot) is None
    # when a page opts in, its reads go to the replica; writes never do
    with replica_reads():
        assert router.db_for_read(MarginSnapshot) == REPLICA
        assert router.db_for_write(MarginSnapshot) == "default"
        # and inside a transaction a read must see its own writes: the primary
        with transaction.atomic():
            assert router.db_for_read(MarginSnapshot) is None
    assert router.db_for_read(MarginSnapshot) is None
    assert router.allow_migrate(REPLICA, "margin") is False

"""Database routing for more than one machine: reads a page opts into go to a read replica.

Only reads made inside `replica_reads()` go to the `replica` alias, and only where
DATABASE_REPLICA_URL configures one; everything else (every write, every read of a service,
every read inside a transaction) stays on `default`. A replica lags its primary by a moment:
figures a page shows from the latest completed tick can bear it; a read that must see the
request's own write cannot, so nothing is routed there by default.
"""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.db import connections

REPLICA = "replica"
_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextlib.contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block may be served by the replica (when one is configured)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _replica_reads.get() and not connections["default"].in_atomic_block:
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"

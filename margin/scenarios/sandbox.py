"""A database of the scenario's own inside the connection: every table shadowed by an empty
temporary copy, dropped with the transaction.

PostgreSQL looks a table name up in the session's temporary schema (pg_temp) before any other,
so once `CREATE TEMP TABLE margin_x (LIKE public.margin_x INCLUDING ALL)` has run, every
unqualified query of this connection (the ORM's and the services' raw SQL alike) reads and
writes the copy: the live book is neither read, written nor locked. The copies keep columns,
defaults, identity sequences (their own), CHECK constraints and indexes; not foreign keys and
not triggers (the ledger's balance is still checked by `journal_post` and by `check_ledger`
at the end of the run). Everything happens inside one transaction that is rolled back.
"""

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction

from margin.errors import ApplicationError
from margin.selectors.parameters import _engine_terms


class _RollBack(Exception):
    """Raised at the end of the sandbox's block to undo everything it did."""


@contextlib.contextmanager
def scenario_sandbox() -> Iterator[None]:
    """Run the block against empty copies of every table; undo all of it afterwards (and if
    the block raises, re-raise its error after the rollback)."""
    if connection.vendor != "postgresql":
        raise ApplicationError(
            "Scenarios run on PostgreSQL only (they need a sandbox of temporary tables).",
            {"database": "postgresql required"},
        )
    tables = connection.introspection.django_table_names(only_existing=True)
    # Parameter versions are cached by primary key: the sandbox's keys repeat the live ones.
    _engine_terms.cache_clear()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                for name in sorted(tables):
                    quoted = connection.ops.quote_name(name)
                    cursor.execute(
                        f"CREATE TEMP TABLE {quoted} (LIKE public.{quoted} INCLUDING ALL) "
                        "ON COMMIT DROP"
                    )
            yield
            raise _RollBack
    except _RollBack:
        pass
    finally:
        _engine_terms.cache_clear()

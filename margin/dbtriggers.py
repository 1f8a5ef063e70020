"""Database-enforced rules, installed by migrations for PostgreSQL and SQLite alike."""

from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def _run(schema_editor: BaseDatabaseSchemaEditor, statements: dict[str, list[str]]) -> None:
    for statement in statements[schema_editor.connection.vendor]:
        # No parameters: the SQL holds literal % signs (plpgsql RAISE formats).
        schema_editor.execute(statement, params=None)


def append_only(table: str):
    """A migration operation body: UPDATE and DELETE on `table` raise an error.

    TRUNCATE stays possible for the table owner: the test runner empties tables with it.
    """

    def install(apps, schema_editor) -> None:
        _run(
            schema_editor,
            {
                "postgresql": [
                    """
                    CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger AS $$
                    BEGIN
                      RAISE EXCEPTION '% on % is refused: the table is append-only',
                        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
                    END $$ LANGUAGE plpgsql;
                    """,
                    f"""
                    CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION refuse_change();
                    """,
                ],
                "sqlite": [
                    f"""
                    CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                    BEGIN SELECT RAISE(ABORT, 'UPDATE on {table} is refused: append-only'); END;
                    """,
                    f"""
                    CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                    BEGIN SELECT RAISE(ABORT, 'DELETE on {table} is refused: append-only'); END;
                    """,
                ],
            },
        )

    return install


def deferred_sum_zero(table: str, *, group: str, per: str, amount: str):
    """A migration operation body: at commit, the rows of `table` sharing a `group` must sum
    `amount` to zero per `per` (a journal's entries per asset), or the transaction fails.

    PostgreSQL only: a deferred constraint trigger re-sums the group of each inserted row at
    commit, when every line of the group is in. SQLite has no deferred triggers; there the
    posting service's own check (`margin.services.ledger.journal_post`) is the only one.
    """

    def install(apps, schema_editor) -> None:
        _run(
            schema_editor,
            {
                "postgresql": [
                    f"""
                    CREATE OR REPLACE FUNCTION {table}_sum_zero() RETURNS trigger AS $$
                    DECLARE unbalanced record;
                    BEGIN
                      SELECT {per} AS part, sum({amount}) AS total INTO unbalanced
                        FROM {table} WHERE {group} = NEW.{group}
                        GROUP BY {per} HAVING sum({amount}) <> 0 LIMIT 1;
                      IF FOUND THEN
                        RAISE EXCEPTION '{table}: {group} % does not balance: {per} % sums to %',
                          NEW.{group}, unbalanced.part, unbalanced.total
                          USING ERRCODE = 'check_violation';
                      END IF;
                      RETURN NULL;
                    END $$ LANGUAGE plpgsql;
                    """,
                    f"""
                    CREATE CONSTRAINT TRIGGER {table}_sum_zero AFTER INSERT ON {table}
                    DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION {table}_sum_zero();
                    """,
                ],
                "sqlite": [],
            },
        )

    return install

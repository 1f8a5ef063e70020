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

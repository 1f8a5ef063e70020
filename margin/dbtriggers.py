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


def deferred_sum_zero_per_statement(table: str, *, group: str, per: str, amount: str):
    """A migration operation body: the same rule as `deferred_sum_zero` (at commit, the rows of
    `table` sharing a `group` sum `amount` to zero per `per`), checked once per transaction
    over every group it wrote instead of once per inserted row.

    The row trigger re-summed a journal at commit for each of its lines: a funding settlement
    writing 400,000 lines ran 400,000 queries at commit (and a journal of n lines cost n²).
    Here an AFTER STATEMENT trigger notes the groups an INSERT or COPY wrote (its transition
    table) in `{table}_unchecked`, keyed by the transaction, and one row per statement in
    `{table}_check`, whose deferred constraint trigger checks all the noted groups in one
    query at commit (the first statement's firing does the work and empties both; the others
    find nothing left). SET CONSTRAINTS ... IMMEDIATE checks after each statement, as before.
    Both queue tables are UNLOGGED: they are empty whenever no transaction is open.
    """
    unchecked, check = f"{table}_unchecked", f"{table}_check"

    def install(apps, schema_editor) -> None:
        _run(
            schema_editor,
            {
                "postgresql": [
                    f"DROP TRIGGER IF EXISTS {table}_sum_zero ON {table}",
                    f"DROP FUNCTION IF EXISTS {table}_sum_zero()",
                    f"""
                    CREATE UNLOGGED TABLE {unchecked} (
                      xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
                      {group} bigint NOT NULL
                    )
                    """,
                    f"CREATE INDEX {unchecked}_xact ON {unchecked} (xact)",
                    f"""
                    CREATE UNLOGGED TABLE {check} (
                      xact xid8 NOT NULL DEFAULT pg_current_xact_id()
                    )
                    """,
                    f"CREATE INDEX {check}_xact ON {check} (xact)",
                    f"""
                    CREATE FUNCTION {table}_note_groups() RETURNS trigger AS $$
                    BEGIN
                      INSERT INTO {unchecked} ({group}) SELECT DISTINCT {group} FROM inserted;
                      IF FOUND THEN
                        INSERT INTO {check} DEFAULT VALUES;
                      END IF;
                      RETURN NULL;
                    END $$ LANGUAGE plpgsql;
                    """,
                    f"""
                    CREATE TRIGGER {table}_note_groups AFTER INSERT ON {table}
                    REFERENCING NEW TABLE AS inserted
                    FOR EACH STATEMENT EXECUTE FUNCTION {table}_note_groups();
                    """,
                    f"""
                    CREATE FUNCTION {table}_groups_sum_zero() RETURNS trigger AS $$
                    DECLARE
                      noted bigint[];
                      unbalanced record;
                    BEGIN
                      DELETE FROM {check} WHERE xact = NEW.xact;
                      WITH taken AS (DELETE FROM {unchecked} WHERE xact = NEW.xact
                                     RETURNING {group})
                        SELECT array_agg(DISTINCT {group}) INTO noted FROM taken;
                      IF noted IS NULL THEN
                        RETURN NULL;
                      END IF;
                      SELECT {group} AS grp, {per} AS part, sum({amount}) AS total
                        INTO unbalanced FROM {table} WHERE {group} = ANY (noted)
                        GROUP BY {group}, {per} HAVING sum({amount}) <> 0 LIMIT 1;
                      IF FOUND THEN
                        RAISE EXCEPTION '{table}: {group} % does not balance: {per} % sums to %',
                          unbalanced.grp, unbalanced.part, unbalanced.total
                          USING ERRCODE = 'check_violation';
                      END IF;
                      RETURN NULL;
                    END $$ LANGUAGE plpgsql;
                    """,
                    f"""
                    CREATE CONSTRAINT TRIGGER {check}_sum_zero AFTER INSERT ON {check}
                    DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION {table}_groups_sum_zero();
                    """,
                ],
                "sqlite": [],
            },
        )

    def uninstall(apps, schema_editor) -> None:
        _run(
            schema_editor,
            {
                "postgresql": [
                    f"DROP TRIGGER {table}_note_groups ON {table}",
                    f"DROP FUNCTION {table}_note_groups()",
                    f"DROP TABLE {check}, {unchecked}",
                    f"DROP FUNCTION {table}_groups_sum_zero()",
                ],
                "sqlite": [],
            },
        )
        deferred_sum_zero(table, group=group, per=per, amount=amount)(apps, schema_editor)

    return install, uninstall


def composite_foreign_key(
    table: str,
    *,
    name: str,
    columns: tuple[str, ...],
    target: str,
    target_columns: tuple[str, ...],
    replaces: dict[str, str],
):
    """A migration operation body: one foreign key over `columns` of `table` to the unique
    `target_columns` of `target`, in place of the single-column foreign keys of `replaces`
    (column → the table whose id it holds), whose references it implies.

    PostgreSQL checks a foreign key with a query per inserted row, so one key over both
    columns is one check where there were two, and the pair must exist together. It is added
    NOT VALID and then validated: the rows already there are checked in one pass. SQLite
    cannot add a constraint to a table without rebuilding it (which would drop its
    append-only triggers): there a BEFORE INSERT trigger refuses the same rows, the declared
    single-column foreign keys stay, and the rows already there are checked once here.
    """
    matched = " AND ".join(
        f"t.{ref} = {{row}}.{col}" for col, ref in zip(columns, target_columns, strict=True)
    )

    def install(apps, schema_editor) -> None:
        connection = schema_editor.connection
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                found = connection.introspection.get_constraints(cursor, table)
            for key, info in sorted(found.items()):
                if (
                    info["foreign_key"]
                    and len(info["columns"]) == 1
                    and info["columns"][0] in replaces
                ):
                    schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {key}")
            schema_editor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({', '.join(columns)}) "
                f"REFERENCES {target} ({', '.join(target_columns)}) "
                "DEFERRABLE INITIALLY DEFERRED NOT VALID"
            )
            schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {table} e "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {matched.format(row='e')})"
            )
            (orphans,) = cursor.fetchone()
        if orphans:
            raise ValueError(f"{orphans} rows of {table} break {name}")
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
            f"WHEN NOT EXISTS (SELECT 1 FROM {target} t WHERE {matched.format(row='NEW')}) "
            f"BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint {name} failed'); END",
            params=None,
        )

    def uninstall(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.execute(f"DROP TRIGGER {name}")
            return
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for column, referenced in replaces.items():
            schema_editor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk FOREIGN KEY ({column}) "
                f"REFERENCES {referenced} (id) DEFERRABLE INITIALLY DEFERRED"
            )

    return install, uninstall


BOOK_CHANGES = "margin_bookchange"
BOOK_CHANGES_HORIZON = "margin_bookchange_horizon"


def book_change_log(tables: dict[str, str]):
    """A migration operation body: every INSERT, UPDATE, DELETE or COPY on each of `tables`
    (table → its column holding the margin account's id) notes the accounts it touched in
    `margin_bookchange`, one row per account and statement with the writing transaction's id
    (xid8), so a reader holding a copy of the book can read again exactly the accounts changed
    since (`margin.selectors.book_rows`). The database writes it: no writer (a service, a raw
    QuerySet.update, a seeding COPY, a psql session) can be missed.

    AFTER STATEMENT triggers with transition tables: one INSERT ... SELECT DISTINCT per
    statement, however many rows it wrote. `margin_bookchange_horizon` holds the one row
    saying below which transaction id the log has been pruned (`pruned_below`), and the next
    bound (`next_below`, taken at `next_at`) the next pruning moves it to. PostgreSQL only:
    the embedded demo (SQLite) reads its small book whole every tick."""

    def install(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            f"""
            CREATE TABLE {BOOK_CHANGES} (
              xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
              account_id bigint NOT NULL
            )
            """
        )
        schema_editor.execute(
            f"CREATE INDEX {BOOK_CHANGES}_account_xid ON {BOOK_CHANGES} (account_id, xid)"
        )
        schema_editor.execute(
            f"""
            CREATE TABLE {BOOK_CHANGES_HORIZON} (
              pruned_below xid8 NOT NULL,
              next_below xid8 NOT NULL,
              next_at timestamptz NOT NULL
            )
            """
        )
        schema_editor.execute(
            f"INSERT INTO {BOOK_CHANGES_HORIZON} "
            "SELECT '0'::xid8, pg_snapshot_xmin(pg_current_snapshot()), now()"
        )
        for table, column in tables.items():
            noted = f"SELECT {column} FROM {{rows}} WHERE {column} IS NOT NULL"
            schema_editor.execute(
                f"""
                CREATE FUNCTION {table}_book_change() RETURNS trigger AS $$
                BEGIN
                  IF TG_OP = 'INSERT' THEN
                    INSERT INTO {BOOK_CHANGES} (account_id)
                      {noted.format(rows="new_rows")} GROUP BY {column};
                  ELSIF TG_OP = 'DELETE' THEN
                    INSERT INTO {BOOK_CHANGES} (account_id)
                      {noted.format(rows="old_rows")} GROUP BY {column};
                  ELSE
                    INSERT INTO {BOOK_CHANGES} (account_id)
                      {noted.format(rows="new_rows")} UNION {noted.format(rows="old_rows")};
                  END IF;
                  RETURN NULL;
                END $$ LANGUAGE plpgsql
                """,
                params=None,
            )
            for event, referencing in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                ("DELETE", "OLD TABLE AS old_rows"),
            ):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_book_{event.lower()} AFTER {event} ON {table} "
                    f"REFERENCING {referencing} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_book_change()"
                )

    def uninstall(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER {table}_book_{event} ON {table}")
            schema_editor.execute(f"DROP FUNCTION {table}_book_change()")
        schema_editor.execute(f"DROP TABLE {BOOK_CHANGES}, {BOOK_CHANGES_HORIZON}")

    return install, uninstall

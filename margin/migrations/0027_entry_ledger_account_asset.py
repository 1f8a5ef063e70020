import django.db.models.deletion
from django.db import migrations, models

from margin.dbtriggers import composite_foreign_key

install, uninstall = composite_foreign_key(
    "margin_entry",
    name="entry_ledger_account_asset",
    columns=("ledger_account_id", "asset_id"),
    target="margin_ledgeraccount",
    target_columns=("id", "asset_id"),
    replaces={"ledger_account_id": "margin_ledgeraccount", "asset_id": "margin_asset"},
)


def entry_asset_index_drop(apps, schema_editor):
    """Nothing reads entries by asset alone (a journal's are read by journal, an account's by
    ledger account): one index less to write per entry."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "margin_entry")
    for name, info in sorted(found.items()):
        if info["index"] and not info["primary_key"] and info["columns"] == ["asset_id"]:
            schema_editor.execute(f"DROP INDEX {name}")


def entry_asset_index_create(apps, schema_editor):
    schema_editor.execute("CREATE INDEX margin_entry_asset_id ON margin_entry (asset_id)")


def payment_ids_cached(apps, schema_editor):
    """Each connection takes funding payment ids 1,000 at a time: the shards settling in
    parallel each insert ~108,000 payments, and drawing every id from the one sequence made
    them wait on each other (a 25,000-account shard's payments: 0.47 s beside another shard,
    0.34 s cached, 0.25 s alone). The ids stay unique and grow within a connection; the
    payments are read by position and rate, never in id order across connections."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE margin_fundingpayment ALTER COLUMN id SET CACHE 1000")


def payment_ids_one_at_a_time(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE margin_fundingpayment ALTER COLUMN id SET CACHE 1")


class Migration(migrations.Migration):
    dependencies = [("margin", "0026_optdesk_snapshot_scan_risk")]

    operations = [
        migrations.AddConstraint(
            model_name="ledgeraccount",
            constraint=models.UniqueConstraint(
                fields=("id", "asset"), name="ledger_account_id_asset"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="entry",
                    name="asset",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="margin.asset",
                    ),
                ),
                migrations.AlterField(
                    model_name="entry",
                    name="ledger_account",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="entries",
                        to="margin.ledgeraccount",
                    ),
                ),
            ],
            # Not AlterField in the database: on SQLite it rebuilds the table, dropping the
            # entries' append-only triggers.
            database_operations=[
                migrations.RunPython(install, uninstall),
                migrations.RunPython(entry_asset_index_drop, entry_asset_index_create),
            ],
        ),
        migrations.RunPython(payment_ids_cached, payment_ids_one_at_a_time),
    ]

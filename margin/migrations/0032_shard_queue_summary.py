"""What each shard of a tick writes down for the desk's queue (counts per state, the heads of
its orders): the queue then counts and pages the latest tick without reading a million rows.
Null for the shards written before.

PostgreSQL: no statistics on the snapshots' tick. While fewer than 100 ticks are analyzed,
every tick is a most-common value; the newest, which no ANALYZE has seen yet, is then taken
for one row, and the planner walks that whole tick by its `tick_id` index to find a few
hundred accounts instead of using the (account, tick) index. Without statistics a tick is
estimated at 0.5 % of the table, about what one of `SNAPSHOT_KEEP_TICKS` is. ANALYZE leaves
the statistics it already gathered: they are removed where the migrating role may
(pg_statistic is the superuser's)."""

from django.db import DatabaseError, migrations, models, transaction

TICK_STATISTICS = "ALTER TABLE margin_marginsnapshot ALTER COLUMN tick_id SET STATISTICS {}"
GATHERED = """
DELETE FROM pg_statistic
WHERE starelid = 'margin_marginsnapshot'::regclass
  AND staattnum = (
    SELECT attnum FROM pg_attribute
    WHERE attrelid = 'margin_marginsnapshot'::regclass AND attname = 'tick_id'
  )
"""


def tick_statistics_off(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TICK_STATISTICS.format(0))
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(GATHERED)
    except DatabaseError:
        # Not the superuser: the statistics gathered so far stay until one runs GATHERED.
        return


def tick_statistics_on(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TICK_STATISTICS.format(-1))


class Migration(migrations.Migration):
    dependencies = [
        ("margin", "0031_snapshot_positions_packed"),
    ]

    operations = [
        migrations.AddField(
            model_name="revaluationshard",
            name="queue",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(tick_statistics_off, tick_statistics_on),
    ]

"""Keep one queue index only: each index on the snapshots costs the revaluation ~1.5 s of
write time per 100,000-row tick (bench_revaluation, summed over shards), and the distance
order, less used than the ratio one, sorts the tick's rows in a few hundred ms without it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("margin", "0011_reval_tick_volatility")]

    operations = [
        migrations.RunSQL(
            "DROP INDEX IF EXISTS desk_queue_by_buffer",
            "CREATE INDEX desk_queue_by_buffer ON margin_marginsnapshot "
            "(tick_id, (margin_balance - maintenance_margin), account_id) "
            "WHERE maintenance_margin > 0",
        )
    ]

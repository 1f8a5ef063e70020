"""Expiry settled set-based by the revaluation shards (issue 17).

A position of an expired series is closed by one settlement fill: a partial unique index
(settlement fills only, so trading fills are not indexed twice) makes a retried settlement fail
rather than pay twice. The open positions by series and account, a partial index: a shard
finds its accounts' open positions of the settled series in one index probe per series (by the
(account, instrument) index it read every position of its accounts once per series, 0.47 s per
shard of 25,000 accounts with 28 series settled, growing with every series settled since)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("margin", "0032_shard_queue_summary"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.UniqueConstraint(
                condition=models.Q(("reason", "settlement")),
                fields=("position",),
                name="fill_settlement_once",
            ),
        ),
        migrations.AddIndex(
            model_name="position",
            index=models.Index(
                condition=models.Q(("quantity", 0), _negated=True),
                fields=["instrument", "margin_account"],
                name="position_open_by_instrument",
            ),
        ),
    ]

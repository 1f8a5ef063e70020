"""A position of an expired series is closed by one settlement fill: the shards settle expiries
set-based, and a retried settlement must fail rather than pay twice. A partial unique index
(settlement fills only), so trading fills are not indexed twice."""

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
    ]

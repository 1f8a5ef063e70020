"""Each tick names the class of healthy accounts it writes in full (`refresh_class`); null for
the ticks before, which wrote every account."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("margin", "0033_expiry_settlement"),
    ]

    operations = [
        migrations.AddField(
            model_name="revaluationtick",
            name="refresh_class",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]

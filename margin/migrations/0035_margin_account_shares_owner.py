"""`MarginAccount.shares_owner`: whether the owner holds another margin account too, set here
for the accounts already opened and kept by `margin_account_open` from now on."""

from django.db import migrations, models

SHARED_OWNERS_MARK = """
UPDATE margin_marginaccount SET shares_owner = TRUE
WHERE owner_id IN (
    SELECT owner_id FROM margin_marginaccount GROUP BY owner_id HAVING COUNT(*) > 1
)
"""


class Migration(migrations.Migration):
    dependencies = [("margin", "0034_tick_refresh_class")]

    operations = [
        migrations.AddField(
            model_name="marginaccount",
            name="shares_owner",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunSQL(SHARED_OWNERS_MARK, migrations.RunSQL.noop),
    ]

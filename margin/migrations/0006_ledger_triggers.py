from django.db import migrations

from margin.dbtriggers import append_only, deferred_sum_zero


class Migration(migrations.Migration):
    dependencies = [("margin", "0005_desk_cases_proposals_runs")]

    operations = [
        migrations.RunPython(append_only("margin_entry"), migrations.RunPython.noop),
        migrations.RunPython(
            deferred_sum_zero("margin_entry", group="journal_id", per="asset_id", amount="amount"),
            migrations.RunPython.noop,
        ),
    ]

from django.db import migrations

from margin.dbtriggers import deferred_sum_zero_per_statement

install, uninstall = deferred_sum_zero_per_statement(
    "margin_entry", group="journal_id", per="asset_id", amount="amount"
)


class Migration(migrations.Migration):
    dependencies = [("margin", "0020_liquidity")]

    operations = [migrations.RunPython(install, uninstall)]

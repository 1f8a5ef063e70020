from django.db import migrations

from margin.dbtriggers import book_change_log

# What the revaluation's book reads per account (`margin.selectors.book_rows`): the account's
# own columns, its positions, its wallet and isolated-margin ledger lines.
install, uninstall = book_change_log(
    {
        "margin_marginaccount": "id",
        "margin_position": "margin_account_id",
        "margin_ledgeraccount": "margin_account_id",
    }
)


class Migration(migrations.Migration):
    dependencies = [("margin", "0036_snapshot_drop_ratio_index")]

    operations = [migrations.RunPython(install, uninstall)]

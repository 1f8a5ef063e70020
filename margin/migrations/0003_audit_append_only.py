from django.db import migrations

from margin.dbtriggers import append_only


class Migration(migrations.Migration):
    dependencies = [("margin", "0002_reference_accounts_ledger_positions")]

    operations = [migrations.RunPython(append_only("margin_auditentry"), migrations.RunPython.noop)]

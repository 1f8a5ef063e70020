from django.core.management.base import BaseCommand

from margin.services.reference import reference_data_ensure


class Command(BaseCommand):
    # An operations command: it must run even while a page elsewhere fails its checks.
    requires_system_checks = []
    help = "Seed the demo assets, instruments, credit tiers, parameter version 1 and prices."

    def handle(self, *args, **options) -> None:
        version = reference_data_ensure()
        self.stdout.write(f"reference data ready; parameters in force: {version}")

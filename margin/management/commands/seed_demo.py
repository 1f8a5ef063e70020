from django.core.management.base import BaseCommand

from accounts.roles import ADMIN, RISK_MANAGER, RISK_OFFICER, TRADER
from accounts.services import user_ensure

# Local demo only: the README lists these; never run seed_demo against a real deployment.
DEMO_USERS = [
    ("trader", "trader-demo-pass", TRADER),
    ("trader2", "trader-demo-pass", TRADER),
    ("officer", "officer-demo-pass", RISK_OFFICER),
    ("officer2", "officer-demo-pass", RISK_OFFICER),
    ("manager", "manager-demo-pass", RISK_MANAGER),
    ("admin", "admin-demo-pass", ADMIN),
]


class Command(BaseCommand):
    help = "Create the demo users (one per role and a second trader and officer); safe to rerun."

    def handle(self, *args, **options) -> None:
        for username, password, role in DEMO_USERS:
            user_ensure(
                username=username, password=password, role=role, email=f"{username}@demo.invalid"
            )
        self.stdout.write(f"demo users ready: {', '.join(u for u, _, _ in DEMO_USERS)}")

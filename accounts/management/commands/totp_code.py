from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.second_factor import authenticator_of, totp_code


class Command(BaseCommand):
    help = (
        "Print the current authenticator code of a user (for the demo desk users, whose "
        "secrets the README publishes; it reads the secret from the database)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = User.objects.filter(username=username).first()
        device = authenticator_of(user) if user else None
        if device is None:
            raise CommandError(f"{username!r} has no authenticator set up.")
        self.stdout.write(totp_code(device))

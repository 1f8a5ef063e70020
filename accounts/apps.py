from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        from accounts import permissions  # noqa: F401  (connects its signals)
        from accounts.roles import ensure_roles

        # Permissions exist only after migrate creates them, so roles are synced then.
        post_migrate.connect(ensure_roles, sender=self)

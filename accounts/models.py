from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The login of a trader or of a member of the risk desk; the role is a group."""

    # Moves whenever what the user may do changes (their groups, their own permissions, a group's
    # permissions: `accounts.permissions`); their permission set is cached under it.
    permissions_version = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        permissions = [
            ("trade", "Can hold margin accounts and trade them"),
            ("use_desk", "Can use the risk desk"),
            ("propose_change", "Can propose desk actions and parameter changes"),
            ("approve_change", "Can approve what another officer proposed (four-eyes)"),
        ]

    @property
    def role_names(self) -> list[str]:
        return sorted(group.name for group in self.groups.all())


class ApiToken(models.Model):
    """A per-user API token. Only the SHA-256 of the secret is kept: it is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64, help_text="What the token is for, e.g. 'hedging bot'.")
    prefix = models.CharField(
        max_length=16, help_text="The first characters of the token, to recognise it in lists."
    )
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The login of a trader or of a member of the risk desk; the role is a group."""

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

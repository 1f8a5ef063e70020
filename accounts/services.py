from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import User
from accounts.roles import ADMIN, ROLE_PERMISSIONS, ensure_roles


@transaction.atomic
def user_ensure(*, username: str, password: str, role: str, email: str = "") -> User:
    """Create the user with exactly this role, or bring an existing one back to it."""
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}")
    ensure_roles()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created or not user.check_password(password):
        user.set_password(password)
    user.email = email or user.email
    user.is_staff = user.is_superuser = role == ADMIN
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user

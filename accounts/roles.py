"""Roles are Django groups; this module is the one place that says what each may do."""

from django.contrib.auth.models import Group, Permission

TRADER = "trader"
RISK_OFFICER = "risk officer"
RISK_MANAGER = "risk manager"
ADMIN = "admin"

TRADE = "accounts.trade"
USE_DESK = "accounts.use_desk"
PROPOSE = "accounts.propose_change"
APPROVE = "accounts.approve_change"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRADER: [TRADE],
    RISK_OFFICER: [USE_DESK, PROPOSE],
    RISK_MANAGER: [USE_DESK, PROPOSE, APPROVE],
    ADMIN: [
        USE_DESK,
        PROPOSE,
        APPROVE,
        "accounts.view_user",
        "accounts.change_user",
        "accounts.add_user",
    ],
}


def ensure_roles(**_kwargs) -> None:
    """Create the role groups and set exactly their permissions (idempotent)."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in (code.split(".", 1) for code in codes)
        ]
        group.permissions.set(permissions)

"""Roles are Django groups; this module is the one place that says what each may do."""

from django.contrib.auth.models import Group, Permission

TRADER = "trader"
RISK_OFFICER = "risk officer"
RISK_MANAGER = "risk manager"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRADER: ["accounts.trade"],
    RISK_OFFICER: ["accounts.use_desk", "accounts.propose_change"],
    RISK_MANAGER: ["accounts.use_desk", "accounts.propose_change", "accounts.approve_change"],
    ADMIN: [
        "accounts.use_desk",
        "accounts.propose_change",
        "accounts.approve_change",
        "accounts.view_user",
        "accounts.change_user",
        "accounts.add_user",
    ],
}

TRADE = "accounts.trade"
USE_DESK = "accounts.use_desk"
PROPOSE = "accounts.propose_change"
APPROVE = "accounts.approve_change"


def ensure_roles(**_kwargs) -> None:
    """Create the role groups and set exactly their permissions (idempotent)."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in (code.split(".", 1) for code in codes)
        ]
        group.permissions.set(permissions)

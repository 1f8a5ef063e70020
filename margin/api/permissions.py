"""Who may call what: the same role permissions as the pages (accounts.roles)."""

from rest_framework.permissions import BasePermission

from accounts.roles import APPROVE, PROPOSE, TRADE, USE_DESK


class _HasPermission(BasePermission):
    permission = ""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and request.user.has_perm(
            self.permission
        )


class IsTrader(_HasPermission):
    permission = TRADE


class IsDesk(_HasPermission):
    permission = USE_DESK


class IsProposer(_HasPermission):
    permission = PROPOSE


class IsApprover(_HasPermission):
    permission = APPROVE

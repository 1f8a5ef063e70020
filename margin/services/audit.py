from typing import Any

from margin.models import AuditEntry, MarginAccount


def audit_record(
    *,
    action: str,
    actor=None,
    margin_account: MarginAccount | None = None,
    subject: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEntry:
    """Append one line to the audit trail; call it inside the transaction of the change."""
    return AuditEntry.objects.create(
        action=action,
        actor=actor,
        margin_account=margin_account,
        subject=subject,
        before=before,
        after=after,
        reason=reason,
    )

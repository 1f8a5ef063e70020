from collections.abc import Sequence
from typing import Any

from margin.models import AuditEntry, MarginAccount
from margin.packed_write import model_rows_insert


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


def audit_columns(columns: dict[str, Sequence]) -> None:
    """Append many lines given column by column (`margin.packed_write.model_rows_insert`):
    for the revaluation recording thousands of transitions in one shard."""
    model_rows_insert(AuditEntry, columns)

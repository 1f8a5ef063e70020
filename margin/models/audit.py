from django.conf import settings
from django.db import models

from margin.models.accounts import MarginAccount


class AuditEntry(models.Model):
    """Append-only trail of every desk action, automatic transition and liquidation.

    PostgreSQL refuses UPDATE and DELETE on this table (migration `audit_append_only`).
    `actor` is null for the system (the revaluation job).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    margin_account = models.ForeignKey(
        MarginAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="audit"
    )
    subject = models.CharField(max_length=120, blank=True, help_text="e.g. 'case:12', 'params:v3'")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["margin_account", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.subject}"

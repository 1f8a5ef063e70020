from django.conf import settings
from django.db import models

from margin.models.accounts import MarginAccount


class Notification(models.Model):
    """A message to a trader in the app (margin call, liquidation, a desk action...); e-mailed
    once. Unread (`read_at` empty) it shows on its account's page until the trader
    acknowledges it."""

    class Kind(models.TextChoices):
        MARGIN_CALL = "margin_call", "Margin call"
        LIQUIDATION = "liquidation", "Liquidation"
        BANKRUPTCY = "bankruptcy", "Bankruptcy"
        ADL = "adl", "Auto-deleveraging"
        EXPIRY = "expiry", "Futures expiry"
        # What the risk desk did to the account (a desk margin call is a MARGIN_CALL).
        FORCED_REDUCTION = "forced_reduction", "Forced reduction by the risk desk"
        REDUCE_ONLY = "reduce_only", "Reduce-only"
        CREDIT_TIER = "credit_tier", "Credit-tier change"
        CASE_CLOSED = "case_closed", "Risk desk case closed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    account = models.ForeignKey(
        MarginAccount,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: {self.text[:40]}"

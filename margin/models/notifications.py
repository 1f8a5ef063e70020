from django.conf import settings
from django.db import models

from margin.models.accounts import MarginAccount


class Notification(models.Model):
    """A message to a trader in the app (margin call, liquidation...); e-mailed once."""

    class Kind(models.TextChoices):
        MARGIN_CALL = "margin_call", "Margin call"
        LIQUIDATION = "liquidation", "Liquidation"
        BANKRUPTCY = "bankruptcy", "Bankruptcy"
        ADL = "adl", "Auto-deleveraging"
        EXPIRY = "expiry", "Futures expiry"

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

from django.conf import settings
from django.db import models

from margin.models.reference import CreditTier
from margin.vocabulary import AccountState


class MarginScheme(models.TextChoices):
    """What the account's maintenance requirement is (`margin.engine.scheme`); the desk assigns
    it through a four-eyes proposal."""

    STANDARD = "standard", "Standard (tiered maintenance margin)"
    PORTFOLIO = "portfolio", "Portfolio (max of tiered MM and stress loss)"


class MarginAccount(models.Model):
    """A trader's margin account: one cross pool plus any isolated positions."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="margin_accounts"
    )
    name = models.CharField(max_length=64, default="Main")
    credit_tier = models.ForeignKey(CreditTier, on_delete=models.PROTECT, related_name="accounts")
    state = models.CharField(
        max_length=16, choices=AccountState.choices, default=AccountState.HEALTHY, db_index=True
    )
    reduce_only = models.BooleanField(
        default=False, help_text="Set by the desk: the account may only reduce its positions."
    )
    # A database default too: the scale seed COPYs accounts without naming the column.
    margin_scheme = models.CharField(
        max_length=16,
        choices=MarginScheme.choices,
        default=MarginScheme.STANDARD,
        db_default=MarginScheme.STANDARD,
    )
    # Set by the revaluation job: an open margin call's deadline (None without one), and
    # whether reduce-only was set by that deadline passing (lifted by the job once the account
    # is back) rather than by the desk (lifted by the desk only).
    margin_call_due_at = models.DateTimeField(null=True, blank=True)
    reduce_only_automatic = models.BooleanField(default=False, db_default=False)
    # Whether the owner holds another margin account too: the liquidity charges then take what
    # they hold over all of them. Kept by `margin_account_open` (accounts are never deleted), so
    # a revaluation shard reads it with the account instead of counting each owner's accounts.
    shares_owner = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="margin_account_name_per_owner")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

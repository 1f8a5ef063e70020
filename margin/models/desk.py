"""The risk desk's own records: cases on accounts, four-eyes proposals, stress and cascade runs.

What the desk *did* lives in the append-only `AuditEntry`; these rows hold the desk's work in
progress (an open case, a pending proposal) and the saved results of its simulations.
"""

from django.conf import settings
from django.db import models

from margin.models.accounts import MarginAccount
from margin.models.reference import MONEY, RATIO, ParameterVersion
from margin.vocabulary import CascadeRunStatus, CaseStatus, ProposalStatus


class Case(models.Model):
    """The desk's file on one account: who looks after it, notes, and the actions taken."""

    Status = CaseStatus

    margin_account = models.ForeignKey(
        MarginAccount, on_delete=models.PROTECT, related_name="desk_cases"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    summary = models.CharField(max_length=200)
    # Null: opened by the system (a liquidation a stale price holds back). No user stands for
    # the system: one would have to exist in every database and could be given a password,
    # permissions or cases; the pages show "system".
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            # Two officers opening a case on the same account at once must not get two files.
            models.UniqueConstraint(
                fields=["margin_account"],
                condition=models.Q(status="open"),
                name="desk_one_open_case_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"case {self.pk} on #{self.margin_account_id}"

    @property
    def opener(self) -> str:
        """Who opened it, as the desk reads it."""
        return self.opened_by.username if self.opened_by else "system"


class CaseNote(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]


class Proposal(models.Model):
    """A change one officer proposes and a risk manager who is not the proposer carries out."""

    class Kind(models.TextChoices):
        FORCED_REDUCTION = "forced_reduction", "Forced reduction"
        CREDIT_TIER_CHANGE = "credit_tier_change", "Credit-tier change"
        MARGIN_SCHEME_CHANGE = "margin_scheme_change", "Margin-scheme change"
        PARAMETER_CHANGE = "parameter_change", "Risk parameter change"

    Status = ProposalStatus

    kind = models.CharField(max_length=24, choices=Kind.choices)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    payload = models.JSONField(help_text="What to change, in the kind's own shape.")
    reason = models.TextField()
    margin_account = models.ForeignKey(
        MarginAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    impact = models.JSONField(null=True, blank=True, help_text="Parameter changes: the preview.")
    result = models.JSONField(null=True, blank=True, help_text="What carrying it out produced.")
    proposer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "expires_at"], name="desk_proposal_due")]
        constraints = [
            # Four-eyes, held by the database too: nobody approves their own proposal.
            models.CheckConstraint(
                condition=models.Q(approver__isnull=True)
                | ~models.Q(approver=models.F("proposer")),
                name="desk_proposal_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="parameter_change")
                | models.Q(margin_account__isnull=False),
                name="desk_proposal_account_action_has_account",
            ),
        ]

    def __str__(self) -> str:
        return f"proposal {self.pk} {self.kind} ({self.status})"


class StressRun(models.Model):
    """One scenario of the library run over the whole book, with its saved figures."""

    scenario = models.CharField(max_length=24)
    options = models.JSONField(default=dict)
    label = models.CharField(max_length=200)
    parameter_version = models.ForeignKey(
        ParameterVersion, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accounts = models.PositiveIntegerField()
    accounts_under_maintenance = models.PositiveIntegerField()
    maintenance_shortfall = models.DecimalField(**MONEY)
    deficit = models.DecimalField(**MONEY, help_text="Negative equity the insurance fund meets.")
    insurance_fund = models.DecimalField(**MONEY)
    coverage = models.DecimalField(
        **RATIO, null=True, help_text="Insurance fund / deficit; none without a deficit."
    )
    duration_ms = models.PositiveIntegerField()
    details = models.JSONField(default=dict, help_text="Shocks, ratio buckets, worst accounts.")

    class Meta:
        ordering = ["-pk"]


class CascadeRun(models.Model):
    """A liquidation-cascade simulation, run by a Celery task that reports its progress here."""

    Status = CascadeRunStatus

    options = models.JSONField(default=dict)
    label = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rounds = models.JSONField(default=list, help_text="One entry per round.")
    accounts_liquidated = models.PositiveIntegerField(default=0)
    insurance_used = models.DecimalField(**MONEY, default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-pk"]


class ScenarioRun(models.Model):
    """A risk scenario a desk member ran from the desk's page (`manage.py run_scenario`'s
    format, run in its sandbox): who, when, the input as given, what the run printed and its
    exit status as the command has it (0 done, 1 the pipeline stopped). Bad input (the
    command's exit 2) is refused by the form and never saved."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=200, help_text="The file's name, or 'pasted'.")
    input_text = models.TextField()
    output = models.JSONField(null=True, blank=True, help_text="The run's JSON; none if stopped.")
    exit_status = models.PositiveSmallIntegerField()
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"scenario run {self.pk} ({self.name})"

"""django-filter sets of the desk's lists: the at-risk queue and the audit trail."""

import django_filters
from django import forms
from django.db.models import F
from django_filters.constants import EMPTY_VALUES

from margin.input_limits import TIME_VALIDATORS
from margin.models import (
    AccountState,
    AuditEntry,
    MarginSnapshot,
)
from margin.selectors.accounts import credit_tiers
from margin.selectors.desk import QueueSnapshots, snapshots_exposed_to, snapshots_of_accounts
from margin.selectors.market import assets

QUEUE_ORDERS = {
    "ratio": ("Margin ratio, highest first", ["-margin_ratio", "account_id"]),
    "buffer": ("Distance to liquidation (USD), nearest first", ["buffer", "account_id"]),
    "size": ("Size (maintenance margin), largest first", ["-maintenance_margin", "account_id"]),
    "stress": ("Stress cover (balance − stress loss), least first", ["stress_cover", "account_id"]),
}


class QueueFilter(django_filters.FilterSet):
    """Filters over the latest tick's margin snapshots (one row per account)."""

    # distinct=False: one snapshot per account already; DISTINCT would sort the whole tick.
    state = django_filters.MultipleChoiceFilter(
        field_name="state", choices=AccountState.choices, label="State", distinct=False
    )
    credit_tier = django_filters.ModelChoiceFilter(
        field_name="account__credit_tier",
        method="filter_account",
        queryset=credit_tiers(),
        label="Credit tier",
        empty_label="Any tier",
    )
    asset = django_filters.ModelChoiceFilter(
        queryset=assets(),
        method="filter_asset",
        label="Exposed to",
        to_field_name="symbol",
        empty_label="Any asset",
    )
    min_notional = django_filters.NumberFilter(
        field_name="gross_notional", lookup_expr="gte", label="Notional ≥"
    )
    max_notional = django_filters.NumberFilter(
        field_name="gross_notional", lookup_expr="lte", label="Notional ≤"
    )
    # A percentage, as every page shows a ratio (80 for 80 %); the snapshot stores a fraction.
    min_ratio = django_filters.NumberFilter(
        method="filter_min_ratio",
        label="Margin ratio ≥ (%)",
        help_text="A percentage, as the pages show ratios: 80 finds accounts at 80 % or more.",
    )
    reduce_only = django_filters.BooleanFilter(
        field_name="account__reduce_only",
        method="filter_account",
        label="Reduce-only",
        widget=forms.Select(choices=[("", "Either"), ("true", "Yes"), ("false", "No")]),
    )
    stale_blocked = django_filters.BooleanFilter(
        field_name="stale_blocked",
        label="Liquidation held (stale price)",
        widget=forms.Select(choices=[("", "Either"), ("true", "Yes"), ("false", "No")]),
    )
    order = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in QUEUE_ORDERS.items()],
        method="filter_order",
        label="Order by",
        empty_label=None,
    )

    class Meta:
        model = MarginSnapshot
        fields: list[str] = []

    def filter_asset(self, queryset, name, asset):
        """An open position on an instrument of the asset, or a holding of it as collateral."""
        return snapshots_exposed_to(queryset, asset)

    def filter_account(self, queryset, name, value):
        """By a column of the snapshot's account (`name`, account__<column>)."""
        return snapshots_of_accounts(queryset, **{name.removeprefix("account__"): value})

    def filter_min_ratio(self, queryset, name, percent):
        return queryset.filter(margin_ratio__gte=percent / 100)

    def filter_order(self, queryset, name, value):
        return queryset.order_by(*QUEUE_ORDERS[value][1])

    def filter_queryset(self, queryset):
        # An account without positions has nothing to liquidate: it is not in the queue.
        queryset = queryset.filter(maintenance_margin__gt=0).annotate(
            buffer=F("margin_balance") - F("maintenance_margin"),
            # Below 0: the worst stress scenario would leave the account bankrupt.
            stress_cover=F("margin_balance") - F("stress_margin"),
        )
        queryset = super().filter_queryset(queryset)
        order = self.form.cleaned_data.get("order") or "ratio"
        if not self.form.cleaned_data.get("order"):
            queryset = queryset.order_by(*QUEUE_ORDERS[order][1])
        by_state_only = all(
            value in EMPTY_VALUES
            for name, value in self.form.cleaned_data.items()
            if name not in ("state", "order")
        )
        if by_state_only and isinstance(queryset, QueueSnapshots):
            # Counted and paged from what the tick wrote down, not from a million rows.
            queryset = queryset.summarized(order=order, states=self.form.cleaned_data.get("state"))
        return queryset


class AuditFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith", label="Action starts with")
    actor = django_filters.CharFilter(field_name="actor__username", label="Who (username)")
    margin_account = django_filters.NumberFilter(field_name="margin_account_id", label="Account #")
    subject = django_filters.CharFilter(lookup_expr="startswith", label="Subject")
    since = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", label="From", validators=TIME_VALIDATORS
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="lt", label="Until", validators=TIME_VALIDATORS
    )
    system = django_filters.BooleanFilter(
        field_name="actor", lookup_expr="isnull", label="Automatic only"
    )

    class Meta:
        model = AuditEntry
        fields: list[str] = []

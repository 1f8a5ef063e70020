"""django-filter sets of the API lists."""

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from margin.input_limits import TIME_VALIDATORS
from margin.models import JournalKind, MarginAccount, MarginMode, Position


class AccountFilter(django_filters.FilterSet):
    class Meta:
        model = MarginAccount
        fields = ["state", "reduce_only"]


class PositionFilter(django_filters.FilterSet):
    instrument = django_filters.CharFilter(field_name="instrument__symbol")
    margin_mode = django_filters.ChoiceFilter(choices=MarginMode.choices)
    open = django_filters.BooleanFilter(method="filter_open", label="Only open positions")

    class Meta:
        model = Position
        fields = ["instrument", "margin_mode", "open"]

    def filter_open(self, queryset, name, value):
        return queryset.exclude(quantity=0) if value else queryset.filter(quantity=0)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time turned into UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO
    allows, and a time near year 1 may have no UTC equivalent at all."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validators", TIME_VALIDATORS)
        super().__init__(*args, **kwargs)


class HistoryFilter(django_filters.FilterSet):
    """The filters `margin.selectors.ledger_history` takes, parsed and checked."""

    asset = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=JournalKind.choices)
    since = UtcDateTimeFilter()
    until = UtcDateTimeFilter()

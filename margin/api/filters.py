"""django-filter sets of the API lists."""

import django_filters

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


class HistoryFilter(django_filters.FilterSet):
    """The filters `margin.selectors.ledger_history` takes, parsed and checked."""

    asset = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=JournalKind.choices)
    since = django_filters.IsoDateTimeFilter()
    until = django_filters.IsoDateTimeFilter()

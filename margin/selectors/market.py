"""Reads of the revaluation job's output for pages, the API and the job itself."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from margin.db import decimal, json_value, rows, table
from margin.models import (
    Asset,
    AssetPrice,
    AssetPriceHistory,
    GuardRejection,
    Instrument,
    MarginAccount,
    MarginSnapshot,
    MarkPrice,
    MarkPriceHistory,
    Position,
    RevaluationTick,
)
from margin.selectors.accounts import aware


def stale_symbols(*, now: datetime, max_age_s: float) -> list[str]:
    """Assets and active instruments whose latest price is missing or older than `max_age_s`."""
    fresh_assets = set(
        AssetPrice.objects.filter(
            updated_at__gte=now - timezone.timedelta(seconds=max_age_s)
        ).values_list("asset_id", flat=True)
    )
    fresh_marks = set(
        MarkPrice.objects.filter(
            updated_at__gte=now - timezone.timedelta(seconds=max_age_s)
        ).values_list("instrument_id", flat=True)
    )
    assets = [a.symbol for a in Asset.objects.order_by("symbol") if a.pk not in fresh_assets]
    instruments = [
        i.symbol
        for i in Instrument.objects.filter(is_active=True).order_by("symbol")
        if i.pk not in fresh_marks
    ]
    return assets + instruments


def unfit_prices(*, now: datetime, max_age_s: float) -> dict[str, str]:
    """Every asset and active instrument whose price is not fit to liquidate on, with why:
    missing or older than `max_age_s` (stale), or the last index the guard held for want of a
    quorum of agreeing sources (uncertain; a mark is uncertain with its underlying's index)."""
    doubts = {
        symbol: f"stale: no price within {max_age_s:g} s"
        for symbol in stale_symbols(now=now, max_age_s=max_age_s)
    }
    uncertain = list(
        AssetPrice.objects.exclude(uncertain_reason="").values_list(
            "asset__symbol", "uncertain_reason"
        )
    ) + list(
        MarkPrice.objects.filter(instrument__is_active=True)
        .exclude(uncertain_reason="")
        .values_list("instrument__symbol", "uncertain_reason")
    )
    for symbol, reason in uncertain:
        doubts[symbol] = "; ".join(filter(None, [doubts.get(symbol), f"uncertain: {reason}"]))
    return doubts


def price_unfit_reason(symbol: str, *, now: datetime, max_age_s: float) -> str:
    """Why the price of `symbol` (an asset or an instrument) is not fit to liquidate on; ""
    when it is."""
    return unfit_prices(now=now, max_age_s=max_age_s).get(symbol, "")


def _with_staleness(rows: QuerySet, *, now: datetime, max_age_s: float) -> QuerySet:
    cutoff = now - timezone.timedelta(seconds=max_age_s)
    return rows.annotate(
        is_stale=ExpressionWrapper(Q(updated_at__lt=cutoff), output_field=BooleanField())
    )


def index_prices(*, now: datetime, max_age_s: float) -> QuerySet[AssetPrice]:
    """Every asset's latest index with `is_stale` (older than `max_age_s`) and why it is
    uncertain, if it is: what the desk page and the API show."""
    rows = AssetPrice.objects.select_related("asset").order_by("asset__symbol")
    return _with_staleness(rows, now=now, max_age_s=max_age_s)


def mark_prices(*, now: datetime, max_age_s: float) -> QuerySet[MarkPrice]:
    """Every active instrument's latest mark with its three terms, `is_stale` and why it is
    uncertain, if it is."""
    rows = (
        MarkPrice.objects.filter(instrument__is_active=True)
        .select_related("instrument")
        .order_by("instrument__symbol")
    )
    return _with_staleness(rows, now=now, max_age_s=max_age_s)


def guard_events(*, symbol: str = "", source: str = "", reason: str = "") -> QuerySet:
    """The quotes the price guard did not count as printed, newest first, filtered by what is
    given."""
    filters = {"symbol": symbol, "source": source, "reason": reason}
    return GuardRejection.objects.filter(**{k: v for k, v in filters.items() if v})


# Newest first: tick ids grow with time.
NEWEST_SNAPSHOT_FIRST = "-tick_id"


def _is_stale(age_s: float, prices_stale: bool) -> bool:
    """A revaluation is stale when its tick is older than SNAPSHOT_STALE_AFTER_S, or ran on
    stale prices."""
    return age_s > settings.SNAPSHOT_STALE_AFTER_S or prices_stale


def _aged(snapshot: MarginSnapshot) -> MarginSnapshot:
    """Set `age_s` and `is_stale` on a snapshot read with its tick."""
    snapshot.age_s = (timezone.now() - snapshot.tick.started_at).total_seconds()
    snapshot.is_stale = _is_stale(snapshot.age_s, snapshot.tick.prices_stale)
    return snapshot


def _newest_first(account: MarginAccount) -> QuerySet[MarginSnapshot]:
    return (
        MarginSnapshot.objects.filter(account=account)
        .select_related("tick")
        .order_by(NEWEST_SNAPSHOT_FIRST)
    )


def latest_snapshot(account: MarginAccount) -> MarginSnapshot | None:
    """The account's newest snapshot, with `age_s` and `is_stale` set on it; the tick's frozen
    prices are not read (the dashboard polls this: 7 kB of JSON on the demo's 96 instruments)."""
    snapshot = _newest_first(account).defer("tick__marks", "tick__asset_prices").first()
    return None if snapshot is None else _aged(snapshot)


@dataclass(frozen=True)
class LatestRevaluation:
    """What the dashboard's poll shows of the account's newest snapshot and its tick."""

    at: datetime  # the tick's start: its prices were frozen then
    stale: bool
    stress_margin: Decimal
    # {symbol: why} of the prices the tick would not liquidate on, and its frozen volatility
    # estimate (`RevaluationTick.price_doubts`, `.volatility`).
    price_doubts: dict[str, str]
    volatility: dict


def latest_revaluation(account_id: int) -> LatestRevaluation | None:
    """`latest_snapshot` for the dashboard's poll: the same newest snapshot, in plain SQL and
    only the columns it shows (compiling the queryset cost more CPU than the query)."""
    found = rows(
        "SELECT t.started_at, t.stale_symbols, t.price_doubts, t.volatility, s.stress_margin "
        f"FROM {table(MarginSnapshot)} s JOIN {table(RevaluationTick)} t ON t.id = s.tick_id "
        "WHERE s.account_id = %s ORDER BY s.tick_id DESC LIMIT 1",
        [account_id],
    )
    if not found:
        return None
    started_at, stale_symbols, price_doubts, volatility, stress_margin = found[0]
    at = aware(started_at)
    return LatestRevaluation(
        at=at,
        stale=_is_stale((timezone.now() - at).total_seconds(), bool(json_value(stale_symbols))),
        stress_margin=decimal(stress_margin),
        price_doubts=json_value(price_doubts),
        volatility=json_value(volatility) or {},
    )


def with_latest_snapshot_ids(accounts: QuerySet) -> QuerySet:
    """The accounts annotated with `latest_snapshot_id` (None before the first revaluation)."""
    newest = MarginSnapshot.objects.filter(account=OuterRef("pk")).order_by(NEWEST_SNAPSHOT_FIRST)
    return accounts.annotate(latest_snapshot_id=Subquery(newest.values("pk")[:1]))


def with_latest_snapshots(accounts) -> list:
    """Accounts read through `with_latest_snapshot_ids`, each given `latest_snapshot` (as
    `latest_snapshot` reads it, or None) in one more query whatever their number."""
    accounts = list(accounts)
    latest = {
        snapshot.account_id: _aged(snapshot)
        for snapshot in MarginSnapshot.objects.filter(
            pk__in=[a.latest_snapshot_id for a in accounts if a.latest_snapshot_id]
        ).select_related("tick")
    }
    for account in accounts:
        account.latest_snapshot = latest.get(account.pk)
    return accounts


def _refresh_window(tick_id: int | None) -> QuerySet:
    complete = RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE)
    if tick_id is not None:
        complete = complete.filter(pk__lte=tick_id)
    refresh = settings.SNAPSHOT_REFRESH_TICKS
    return complete.order_by("-pk").values_list("pk", flat=True)[refresh - 1 : refresh]


def refresh_window_start(tick_id: int | None = None) -> int | None:
    """The oldest tick an account's latest snapshot at tick `tick_id` (the latest when None)
    can be of: any SNAPSHOT_REFRESH_TICKS complete ticks in a row write every account
    (`margin.services.revaluation._refresh_class`), so the oldest of the last so many complete
    ticks up to it; None while fewer have completed (any row may be an account's latest)."""
    found = list(_refresh_window(tick_id))
    return found[0] if found else None


def latest_as_of(snapshots: QuerySet[MarginSnapshot], tick: RevaluationTick) -> QuerySet:
    """Of `snapshots`, each account's latest at `tick`: its row of that tick when the tick
    wrote one (every account at risk, changing state, to be liquidated or at the head of the
    desk's queue), else an earlier one of a healthy account, which the tick left for its
    refresh class; the rows looked through go back to `refresh_window_start` only."""
    newer = MarginSnapshot.objects.filter(
        account_id=OuterRef("account_id"), tick_id__gt=OuterRef("tick_id"), tick_id__lte=tick.pk
    )
    # In the same query (no round trip more per page): the window's start, 0 for none.
    oldest = Coalesce(Subquery(_refresh_window(tick.pk)), 0)
    return snapshots.filter(tick_id__gte=oldest, tick_id__lte=tick.pk).exclude(Exists(newer))


def snapshots_as_of(tick: RevaluationTick) -> QuerySet[MarginSnapshot]:
    """Every account's latest snapshot at `tick` (`latest_as_of`)."""
    return latest_as_of(MarginSnapshot.objects.all(), tick)


def snapshot_history(account: MarginAccount, limit: int = 120) -> QuerySet[MarginSnapshot]:
    """The account's latest `limit` snapshots, newest first (charts of ratio and balance)."""
    return _newest_first(account)[:limit]


@dataclass(frozen=True)
class PositionFigures:
    position_id: int
    mark_price: Decimal | None  # the tick's mark of the position's instrument
    maintenance_margin: Decimal
    bracket: int
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def position_figures(account: MarginAccount) -> dict[int, PositionFigures]:
    """Per-position figures of the account's latest snapshot, by position id."""
    snapshot = _newest_first(account).first()
    if snapshot is None:
        return {}
    rows = MarginSnapshot.positions_of(snapshot.positions)
    symbols = dict(
        Position.objects.filter(pk__in=[row["position_id"] for row in rows]).values_list(
            "pk", "instrument__symbol"
        )
    )
    return {
        row["position_id"]: PositionFigures(
            position_id=row["position_id"],
            mark_price=_decimal(snapshot.tick.marks.get(symbols.get(row["position_id"]))),
            maintenance_margin=_decimal(row["maintenance_margin"]),
            bracket=int(row["bracket"]),
            liquidation_price=_decimal(row["liquidation_price"]),
            bankruptcy_price=_decimal(row["bankruptcy_price"]),
        )
        for row in rows
    }


def price_history(subject: Asset | Instrument, since: datetime) -> QuerySet:
    """Index prices of an asset, or mark and index prices of an instrument, since `since`."""
    if isinstance(subject, Asset):
        rows = AssetPriceHistory.objects.filter(asset=subject)
    else:
        rows = MarkPriceHistory.objects.filter(instrument=subject)
    return rows.filter(at__gte=since).order_by("at")


def _number(value) -> float | None:
    return None if value is None else float(Decimal(value))


def chart_series(account: MarginAccount, limit: int) -> dict:
    """The account's charts over its latest `limit` revaluations, oldest first: its margin
    ratio (`ratio`: times `t` and values `v`), and for each open position the tick's mark and
    its liquidation price (`positions`: `symbol`, `t`, `mark`, `liquidation`). Times are
    milliseconds since the epoch; a missing figure is None."""
    snapshots = list(
        snapshot_history(account, limit=limit).values(
            "tick__started_at", "tick__marks", "margin_ratio", "positions"
        )
    )
    snapshots.reverse()
    times = [s["tick__started_at"].timestamp() * 1000 for s in snapshots]
    rows_by_tick = [
        {row["position_id"]: row for row in MarginSnapshot.positions_of(s["positions"])}
        for s in snapshots
    ]
    open_positions = (
        Position.objects.filter(margin_account=account)
        .exclude(quantity=0)
        .values_list("pk", "instrument__symbol")
    )
    series = []
    for pk, symbol in open_positions:
        points = [
            (t, s["tick__marks"].get(symbol), rows[pk])
            for t, s, rows in zip(times, snapshots, rows_by_tick, strict=True)
            if pk in rows
        ]
        series.append(
            {
                "symbol": symbol,
                "t": [t for t, _, _ in points],
                "mark": [_number(mark) for _, mark, _ in points],
                "liquidation": [_number(row["liquidation_price"]) for _, _, row in points],
            }
        )
    return {
        "ratio": {"t": times, "v": [_number(s["margin_ratio"]) for s in snapshots]},
        "positions": series,
    }


def assets() -> QuerySet[Asset]:
    """Every asset (the what-if's choice of which to shock)."""
    return Asset.objects.all()


def active_instruments() -> QuerySet[Instrument]:
    """The instruments open for trading."""
    return Instrument.objects.filter(is_active=True)

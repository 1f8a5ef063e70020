"""The desk's reads: the insurance fund, the price history behind the volatility scenarios
and the replay, the latest revaluation tick and its queue, the heat maps, one account's review,
and the cases, proposals and simulation runs the desk works through."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from math import ceil

import numpy as np
from django.db import connections
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import Abs
from django.db.models.query import ModelIterable
from django.shortcuts import get_object_or_404
from django.utils import timezone

from margin.db import ids_in
from margin.engine.book_liquidation import BookStep, CrossPlan
from margin.engine.queue import head_candidates
from margin.engine.reference import AccountQuote, collateral_line_value
from margin.engine.review import (
    CollateralRow,
    Exposure,
    PositionRow,
    ScenarioRow,
    account_scenarios,
    exposures_by_asset,
)
from margin.engine.shocks import carried_forward
from margin.engine.types import AccountInput
from margin.models import (
    AccountEvent,
    AccountState,
    Asset,
    AssetPriceHistory,
    AuditEntry,
    CascadeRun,
    Case,
    CaseNote,
    CreditTier,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarginAccount,
    MarginSnapshot,
    Position,
    Proposal,
    RevaluationShard,
    RevaluationTick,
    ScenarioRun,
    StressRun,
)
from margin.selectors.figures import figures_now
from margin.selectors.liquidation import (
    account_unfit_prices,
    cross_liquidation_plan,
    stale_prices_now,
)
from margin.selectors.market import latest_as_of, snapshots_as_of

PRICE_HISTORY_POINTS = 2000


def insurance_fund_value() -> Decimal:
    """The insurance fund's balances in USD at the latest asset prices."""
    value = ExpressionWrapper(
        F("balance") * F("asset__price__price"),
        output_field=DecimalField(max_digits=38, decimal_places=18),
    )
    total = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.INSURANCE, margin_account__isnull=True
    ).aggregate(total=Sum(value))["total"]
    return total or Decimal(0)


def price_history(
    asset_names: tuple[str, ...], *, since: datetime | None = None, until: datetime | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Recorded index prices as (times, steps × assets), oldest first, the last
    `PRICE_HISTORY_POINTS` times at most; a time missing an asset's print repeats its previous one,
    and leading times before every asset has printed are dropped (no price to repeat)."""
    rows = AssetPriceHistory.objects.filter(asset__symbol__in=asset_names)
    if since:
        rows = rows.filter(at__gte=since)
    if until:
        rows = rows.filter(at__lte=until)
    times = list(
        rows.order_by("-at").values_list("at", flat=True).distinct()[:PRICE_HISTORY_POINTS]
    )[::-1]
    if not times:
        return np.array([]), np.empty((0, len(asset_names)))
    column = {name: i for i, name in enumerate(asset_names)}
    row = {at: i for i, at in enumerate(times)}
    path = np.full((len(times), len(asset_names)), np.nan)
    for symbol, at, price in rows.filter(at__gte=times[0]).values_list(
        "asset__symbol", "at", "price"
    ):
        path[row[at], column[symbol]] = float(price)
    path = carried_forward(path)
    # An asset never recorded (the settlement coin) holds still at 1 relative to itself.
    never = np.isnan(path).all(axis=0)
    path[:, never] = 1.0
    complete = ~np.isnan(path).any(axis=1)
    return np.array(times, dtype=object)[complete], path[complete]


def latest_complete_tick() -> RevaluationTick | None:
    return (
        RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE)
        .order_by("-pk")
        .first()
    )


# The queue rows a tick writes down per order (`margin.engine.queue`): the API's largest page
# (`margin.api.views.desk.TickPages`), the desk page's first four.
QUEUE_HEAD_ROWS = 200


class QueueSnapshots(QuerySet):
    """A tick's queue rows that count and page from what the tick wrote down (each shard's
    `queue`) when the queue is filtered by state alone: the same rows, order and count as the
    query, without counting or sorting a million snapshots. Any other filter queries: the
    count finds the first pages' keys in the same pass (a paginator counts, then slices the
    same queryset), and such a page reads its rows by key, so the database sorts the narrow
    keys of the matching rows once, not the wide rows with their accounts again."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tick: RevaluationTick | None = None
        self.summary: tuple[int, list[list]] | None = None
        # Set by `count` when it queries: the keys of the first QUEUE_HEAD_ROWS rows.
        self.first_keys: list[int] | None = None

    def _clone(self):
        # The tick carries over; the summary and the first keys are of one set of filters and
        # do not.
        clone = super()._clone()
        clone.tick = self.tick
        return clone

    def summarized(self, *, order: str, states: list[str] | None) -> "QueueSnapshots":
        """This queue (of `states`, every state when None, in `order`, a key of
        `margin.filters.QUEUE_ORDERS`), counted and paged from its tick's shards; itself
        when a shard has written nothing down (written before the summary)."""
        shards = (
            list(
                RevaluationShard.objects.filter(tick=self.tick).values_list(
                    "queue__counts", f"queue__heads__{order}"
                )
            )
            if self.tick is not None
            else [(None, None)]
        )
        if any(counts is None for counts, _ in shards):
            return self
        wanted = states or AccountState.values
        clone = self._chain()
        clone.summary = (
            sum(counts.get(state, 0) for counts, _ in shards for state in wanted),
            [row for _, heads in shards for state in wanted for row in heads.get(state, [])],
        )
        return clone

    def count(self) -> int:
        if self.summary is not None:
            return self.summary[0]
        order_by = self.query.order_by
        if (
            self.query.is_sliced
            or self.query.is_empty()
            or not order_by
            or not all(isinstance(name, str) for name in order_by)
            or self._iterable_class is not ModelIterable
        ):
            return super().count()
        # The total over every row in a subquery, the order outside it: with both in one
        # query the planner costs the window as if the limit cut it short, and takes a join
        # that only starts fast (at 1M: over 90 s for the exposure filter's semi-join).
        counted = self.order_by().values(
            queue_key=F("pk"),
            queue_total=Window(Count("pk")),
            **{f"queue_order_{n}": F(name.removeprefix("-")) for n, name in enumerate(order_by)},
        )
        sql, params = counted.query.sql_with_params()
        order_sql = ", ".join(
            f"queue_order_{n}{' DESC' * name.startswith('-')}" for n, name in enumerate(order_by)
        )
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"SELECT queue_key, queue_total FROM ({sql}) AS queue ORDER BY {order_sql} "
                "LIMIT %s",
                [*params, QUEUE_HEAD_ROWS],
            )
            rows = cursor.fetchall()
        self.first_keys = [pk for pk, _ in rows]
        return rows[0][1] if rows else 0

    def __getitem__(self, k):
        if not isinstance(k, slice) or k.stop is None or k.stop > QUEUE_HEAD_ROWS:
            return super().__getitem__(k)
        if self.summary is not None:
            # A page within the heads reads only the accounts they leave (a few hundred).
            return self.filter(account_id__in=head_candidates(self.summary[1], k.stop))[k]
        if self.first_keys is not None:
            return self.filter(pk__in=self.first_keys[k])
        return super().__getitem__(k)


def queue_snapshots(tick: RevaluationTick | None) -> QueueSnapshots:
    """Each account's latest snapshot at the tick (`margin.selectors.market.latest_as_of`:
    the tick's own for every account at risk and every row the summary pages) with what a
    queue row shows of the account (owner, credit tier, `stale_blocked`: its liquidation at
    that row's tick was held back by a material stale price), for
    `margin.filters.QueueFilter` to filter and order; none before the first tick."""
    held = Liquidation.objects.filter(
        tick_id=OuterRef("tick_id"),
        account_id=OuterRef("account_id"),
        status=Liquidation.Status.HELD,
    )
    snapshots = QueueSnapshots(MarginSnapshot)
    snapshots.tick = tick
    snapshots = snapshots.select_related("account__owner", "account__credit_tier").annotate(
        stale_blocked=Exists(held)
    )
    # Empty before the first tick, but with the same annotations: the filters still apply.
    return latest_as_of(snapshots, tick) if tick is not None else snapshots.none()


HEAT_LEVELS = 5


def heat_level(value: float, top: float) -> int:
    """0 for nothing, then 1..HEAT_LEVELS by the share of the table's largest cell."""
    if value <= 0 or top <= 0:
        return 0
    return max(1, min(HEAT_LEVELS, ceil(HEAT_LEVELS * value / top)))


def exposure_heat_map() -> tuple[list[str], list[dict]]:
    """Gross notional of open positions by underlying asset (rows) and credit tier (columns),
    each cell with its heat level."""
    tiers = list(CreditTier.objects.order_by("rank", "code").values_list("name", flat=True))
    totals = (
        Position.objects.exclude(quantity=0)
        .values("instrument__underlying__symbol", "margin_account__credit_tier__name")
        .annotate(notional=Sum(Abs(F("quantity")) * F("instrument__mark__mark_price")))
    )
    cells: dict[str, dict[str, Decimal]] = {}
    for row in totals:
        cells.setdefault(row["instrument__underlying__symbol"], {})[
            row["margin_account__credit_tier__name"]
        ] = row["notional"] or Decimal(0)
    top = float(max((v for r in cells.values() for v in r.values()), default=0))
    rows = [
        {
            "asset": asset,
            "cells": [
                (cells[asset].get(t, Decimal(0)), heat_level(float(cells[asset].get(t, 0)), top))
                for t in tiers
            ],
        }
        for asset in sorted(cells)
    ]
    return tiers, rows


# Margin-ratio buckets of the heat map (label, low, high) and the risk each stands for: the
# colour of a cell is its bucket's risk, not how many accounts it holds.
RATIO_BUCKET_EDGES = (
    ("below 25%", None, Decimal("0.25")),
    ("25% – 50%", Decimal("0.25"), Decimal("0.5")),
    ("50% – 80%", Decimal("0.5"), Decimal("0.8")),
    ("80% – 100%", Decimal("0.8"), Decimal("1")),
    ("100% and above", Decimal("1"), None),
)
RATIO_BUCKET_RISK = ("safe", "low", "watch", "call", "liquidation")
RISK_ORDER = ("none", "safe", "low", "watch", "call", "liquidation")
UNCOVERED_CALL_SHARE = 0.1


@dataclass(frozen=True)
class RiskCell:
    """Accounts of one ratio bucket and credit tier; `uncovered` of them would lose more than
    their margin balance in their worst stress scenario (stress cover below 0)."""

    accounts: int
    uncovered: int
    bucket_risk: str

    @property
    def risk(self) -> str:
        """The bucket's risk, raised by the accounts in it not covered under stress (their
        worst scenario bankrupts them, whatever their ratio today): to "call" when they are
        `UNCOVERED_CALL_SHARE` of the cell or more, to "watch" when there are fewer. One
        uncovered account among 1,700 safe ones does not paint the safest cell as a call."""
        if not self.accounts:
            return "none"
        raised = "call" if self.uncovered >= UNCOVERED_CALL_SHARE * self.accounts else "watch"
        if self.uncovered and RISK_ORDER.index(self.bucket_risk) < RISK_ORDER.index(raised):
            return raised
        return self.bucket_risk


def ratio_heat_map(tick) -> tuple[list[str], list[dict]]:
    """Accounts with positions at the tick (each one's latest snapshot) by margin-ratio bucket
    (rows) and credit tier (columns), with how many of them have a negative stress cover; no
    equity left counts in the last bucket."""
    tiers = list(CreditTier.objects.order_by("rank", "code").values_list("name", flat=True))
    buckets = {}
    uncovered = Q(margin_balance__lt=F("stress_margin"))
    for n, (_, low, high) in enumerate(RATIO_BUCKET_EDGES):
        bucket = Q()
        if low is not None:
            bucket &= Q(margin_ratio__gte=low)
        if high is not None:
            bucket &= Q(margin_ratio__lt=high)
        if high is None:
            bucket |= Q(margin_ratio__isnull=True)
        buckets[f"bucket_{n}"] = Count("pk", filter=bucket)
        buckets[f"uncovered_{n}"] = Count("pk", filter=bucket & uncovered)
    # One pass over the accounts' latest snapshots, every bucket counted per tier at once.
    by_tier = (
        snapshots_as_of(tick)
        .filter(maintenance_margin__gt=0)
        .values("account__credit_tier__name")
        .annotate(**buckets)
        .order_by()
    )
    counts = {label: {} for label, _, _ in RATIO_BUCKET_EDGES}
    for row in by_tier:
        for n, (label, _, _) in enumerate(RATIO_BUCKET_EDGES):
            counts[label][row["account__credit_tier__name"]] = (
                row[f"bucket_{n}"],
                row[f"uncovered_{n}"],
            )
    return tiers, [
        {
            "bucket": label,
            "risk": RATIO_BUCKET_RISK[n],
            "cells": [
                RiskCell(*counts[label].get(t, (0, 0)), bucket_risk=RATIO_BUCKET_RISK[n])
                for t in tiers
            ],
        }
        for n, (label, _, _) in enumerate(RATIO_BUCKET_EDGES)
    ]


def risk_asset_symbols() -> set[str]:
    """Assets some instrument is written on: the ones a market-wide shock moves (stablecoins
    and the settlement coin hold still; a de-peg scenario moves them)."""
    return set(
        Asset.objects.filter(instruments__isnull=False).distinct().values_list("symbol", flat=True)
    )


# How many of the account's latest margin ratios the review plots.
RATIO_HISTORY_POINTS = 60


@dataclass(frozen=True)
class AccountReview:
    account: MarginAccount
    engine_input: AccountInput
    quote: AccountQuote
    positions: list[PositionRow]
    plan: CrossPlan
    plan_steps: list[tuple[str, BookStep]]
    frozen: list[tuple[str, str]]  # (instrument, why): priced on a price not fit to trade on
    collateral: list[CollateralRow]
    exposures: list[Exposure]
    scenarios: list[ScenarioRow]
    stress_loss: Decimal | None
    ratio_history: list[float]
    events: list[AccountEvent]
    audit: list[AuditEntry]


def account_review(*, account: MarginAccount) -> AccountReview:
    now = figures_now(account)
    version, state, engine_input, quote = now.parameters, now.state, now.input, now.quote
    # By the tick's key: "-tick" would follow RevaluationTick's own newest-first ordering and
    # reverse it, giving the oldest ticks.
    snapshots = list(
        MarginSnapshot.objects.filter(account=account).order_by("-tick_id")[:RATIO_HISTORY_POINTS]
    )
    symbols = {p.engine_id: p.instrument for p in state.positions.values()}
    # The positions the liquidation would freeze, as it finds them (`_liquidate`): on the
    # latest tick's unfit prices and those unfit now.
    at = timezone.now()
    unfit = account_unfit_prices(
        engine_input,
        symbols,
        quote=quote,
        stale=stale_prices_now(
            tick=latest_complete_tick(), now=at, max_age_s=version.price_guard_max_age_s
        ),
        now=at,
        share=version.stale_materiality_share,
    )
    plan = cross_liquidation_plan(
        state,
        engine_input,
        version=version,
        requirement=state.requirement(),
        frozen=unfit.positions,
    )
    sizes = {p.id: p.quantity for p in engine_input.positions}
    return AccountReview(
        account=account,
        engine_input=engine_input,
        quote=quote,
        positions=[
            PositionRow(symbols.get(row.id, row.id), sizes[row.id], row) for row in quote.positions
        ],
        plan=plan,
        plan_steps=[(symbols.get(step.position_id, step.position_id), step) for step in plan.steps],
        frozen=[(symbols[engine_id], why) for engine_id, why in sorted(unfit.why.items())],
        collateral=[
            CollateralRow(
                line.asset,
                line.quantity,
                line.price,
                line.quantity * line.price,
                collateral_line_value(line, engine_input.credit_tier.haircut_scale),
            )
            for line in engine_input.collateral
        ],
        exposures=exposures_by_asset(engine_input),
        scenarios=account_scenarios(engine_input, moving=risk_asset_symbols()),
        stress_loss=snapshots[0].stress_margin if snapshots else None,
        ratio_history=[
            float(ratio)
            for ratio in reversed([s.margin_ratio for s in snapshots])
            if ratio is not None
        ],
        events=list(AccountEvent.objects.filter(account=account)[:20]),
        audit=list(AuditEntry.objects.filter(margin_account=account).select_related("actor")[:30]),
    )


def open_case_ids(account_ids: Iterable[int]) -> dict[int, int]:
    """Account id → its open case's id, for the accounts that have one."""
    return dict(
        Case.objects.filter(
            status=Case.Status.OPEN, margin_account__in=list(account_ids)
        ).values_list("margin_account_id", "pk")
    )


def desk_account(pk: int) -> MarginAccount:
    """Any margin account, with its owner and credit tier; a 404 when there is none."""
    return get_object_or_404(MarginAccount.objects.select_related("owner", "credit_tier"), pk=pk)


def open_case(account: MarginAccount) -> Case | None:
    return (
        Case.objects.filter(margin_account=account, status=Case.Status.OPEN)
        .select_related("assignee", "opened_by")
        .first()
    )


def closed_cases(account: MarginAccount) -> QuerySet[Case]:
    return Case.objects.filter(margin_account=account, status=Case.Status.CLOSED)


def cases(status: str | None = None) -> QuerySet[Case]:
    """Cases newest first, with what a list shows of them (the account's owner, who opened it,
    who has it); of one status when given."""
    rows = Case.objects.select_related("margin_account__owner", "opened_by", "assignee")
    return rows.filter(status=status) if status is not None else rows


def case_with_account(pk: int) -> Case:
    """A case with its account, as an action on it needs; a 404 when there is none."""
    return get_object_or_404(Case.objects.select_related("margin_account"), pk=pk)


def case_detail(pk: int) -> Case:
    """A case with its account, its notes (with their authors) and its proposals (with who
    proposed and decided them), oldest note first; a 404 when there is none."""
    return get_object_or_404(
        Case.objects.select_related(
            "margin_account__owner", "margin_account__credit_tier", "assignee", "opened_by"
        ).prefetch_related(
            Prefetch("notes", queryset=CaseNote.objects.select_related("author")),
            Prefetch("proposals", queryset=Proposal.objects.select_related("proposer", "approver")),
        ),
        pk=pk,
    )


def proposals(status: str | None = None) -> QuerySet[Proposal]:
    """Proposals with who proposed and decided them and their account, newest first; of one
    status when given, the pending ones then soonest to expire first."""
    rows = Proposal.objects.select_related("proposer", "approver", "margin_account")
    if status is None:
        return rows
    order = "expires_at" if status == Proposal.Status.PENDING else "-pk"
    return rows.filter(status=status).order_by(order)


def account_proposals(account: MarginAccount, limit: int = 20) -> QuerySet[Proposal]:
    """The account's latest `limit` proposals."""
    return proposals().filter(margin_account=account)[:limit]


def proposal_detail(pk: int) -> Proposal:
    """A proposal with who proposed and decided it, its account and its case; a 404 when
    there is none."""
    return get_object_or_404(
        Proposal.objects.select_related("proposer", "approver", "margin_account", "case"), pk=pk
    )


def stress_runs() -> QuerySet[StressRun]:
    """Stress runs newest first, with who ran them under which parameters."""
    return StressRun.objects.select_related("created_by", "parameter_version")


def stress_run(pk: int) -> StressRun:
    return get_object_or_404(stress_runs(), pk=pk)


def cascade_runs() -> QuerySet[CascadeRun]:
    """Cascade runs newest first, with who started them."""
    return CascadeRun.objects.select_related("created_by")


def cascade_run(pk: int) -> CascadeRun:
    return get_object_or_404(cascade_runs(), pk=pk)


def audit_entries() -> QuerySet[AuditEntry]:
    """The audit trail newest first, with who acted, for `margin.filters.AuditFilter`."""
    return AuditEntry.objects.select_related("actor")


def snapshots_exposed_to(snapshots: QuerySet[MarginSnapshot], asset: Asset) -> QuerySet:
    """The snapshots of accounts exposed to `asset`: an open position on an instrument of it,
    or a holding of it as collateral. One IN over both (a hashed join, once); an OR of two INs
    is probed per row, and over the million positions on BTC that outgrows a hashed lookup's
    memory: the subquery is then scanned again for every row (over 5 minutes at 1M)."""
    positions = (
        Position.objects.filter(instrument__underlying=asset)
        .exclude(quantity=0)
        .values("margin_account")
        .order_by()
    )
    holdings = (
        LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET, asset=asset, balance__gt=0)
        .values("margin_account")
        .order_by()
    )
    return snapshots.filter(account_id__in=positions.union(holdings))


# Up to this many accounts, a filter on the account's own columns lists them first. At 1M
# the 50,000 accounts of a credit tier, or the few reduce-only ones, are then read by their
# (account, tick) index instead of joining each of the million latest snapshots to its account.
ACCOUNTS_LISTED_MAX = 100_000


def snapshots_of_accounts(snapshots: QuerySet[MarginSnapshot], **account_filter) -> QuerySet:
    """The snapshots of the accounts that `account_filter` (MarginAccount's fields) keeps."""
    accounts = MarginAccount.objects.filter(**account_filter).order_by()
    listed = list(accounts.values_list("pk", flat=True)[: ACCOUNTS_LISTED_MAX + 1])
    if len(listed) <= ACCOUNTS_LISTED_MAX:
        return snapshots.filter(account_id__in=ids_in(listed))
    return snapshots.filter(**{f"account__{name}": v for name, v in account_filter.items()})


def scenario_runs() -> QuerySet[ScenarioRun]:
    """The desk's saved scenario runs, newest first, with who ran them (not their JSON)."""
    return ScenarioRun.objects.select_related("created_by").defer("input_text", "output")


def scenario_run(pk: int) -> ScenarioRun:
    """One saved scenario run; a 404 when there is none."""
    return get_object_or_404(ScenarioRun.objects.select_related("created_by"), pk=pk)

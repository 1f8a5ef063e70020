"""The revaluation tick: freeze prices, split the book into shards, revalue each shard with the
vectorized engine, write snapshots, move account states, hand liquidations on.

`revaluation_tick_start` is the dispatcher (one at a time: an advisory lock); each shard is
`revaluation_shard_run`, which the shard task and the benchmark call alike. A shard's writes are
one transaction (snapshots, states, events, notifications, the shard's completion) taken
under the shard row's lock: a redelivered shard finds it complete and changes nothing.
"""

import contextlib
import fcntl
import itertools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pglock
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from margin.db import ids_in
from margin.engine.grid_summary import AccountScanRisk, account_scan_risk
from margin.engine.option_stress import HeldOptions
from margin.engine.options_vector import PortfolioGrid, portfolio_grid
from margin.engine.portfolio_prices import portfolio_liquidation_prices
from margin.engine.queue import NULL_KEY, key_error, queue_head
from margin.engine.scheme import PORTFOLIO, scheme_figures
from margin.engine.states import (
    LEVEL,
    STATES,
    Thresholds,
    margin_call_amount,
    next_levels,
    worst_ratio,
)
from margin.engine.stress import stress_margin
from margin.engine.vector import Revaluation, revalue, sum_by
from margin.errors import ApplicationError
from margin.models import (
    AccountEvent,
    AccountState,
    AssetPrice,
    MarginAccount,
    MarginSnapshot,
    MarkPrice,
    Notification,
    RevaluationShard,
    RevaluationTick,
)
from margin.packed_write import (
    SIGNIFICANT_DIGITS,
    bytes_field,
    copy_rows,
    decimal_or_none,
    int8_field,
    model_rows_insert,
    numeric_field,
    text_field,
)
from margin.selectors.book import account_id_runs, engine_book, option_book_of
from margin.selectors.desk import QUEUE_HEAD_ROWS
from margin.selectors.market import refresh_window_start, stale_symbols, unfit_prices
from margin.selectors.parameters import parameters_in_force
from margin.selectors.volatility import tick_stress_model, tick_volatility
from margin.services.audit import audit_columns
from margin.services.book_changes import book_changes_prune
from margin.services.expiry import expiry_claim_due, expiry_settle_accounts
from margin.services.funding import (
    funding_claim_due,
    funding_rates_complete,
    funding_settle_accounts,
)
from margin.services.margin_calls import deadline_of, margin_call_deadlines_apply

logger = logging.getLogger(__name__)

TICK_LOCK = "margin.revaluation.tick"
# NUMERIC(20, 12) holds ratios below 10^8: a pool with next to nothing left is stored at the cap.
RATIO_CAP = 1e7


def _stored_ratios(figures) -> np.ndarray:
    """The margin ratios as the snapshots, the queue's keys and the state events keep them:
    capped at RATIO_CAP (nan stays nan: no ratio)."""
    return np.minimum(figures.margin_ratio, RATIO_CAP)


@contextlib.contextmanager
def _tick_lock() -> Iterator[bool]:
    """One dispatcher at a time. PostgreSQL: a session-level advisory lock, released with the
    connection if the worker dies. SQLite (the embedded mode, one machine): an flock on a file
    under var/, which the kernel releases with the process."""
    if connection.vendor == "postgresql":
        with pglock.advisory(TICK_LOCK, timeout=0) as acquired:
            yield acquired
        return
    with open(settings.VAR_DIR / "revaluation-tick.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class TickStart:
    tick: RevaluationTick | None
    shard_ids: list[int] = field(default_factory=list)
    skipped: str = ""


def _abandon_overdue_ticks(*, now: datetime) -> None:
    """A tick whose shards did not all report in time lost a worker: give it up, so the next
    tick (which revalues every account) may start."""
    overdue = now - timedelta(seconds=settings.REVALUATION_TICK_TIMEOUT_S)
    for tick in RevaluationTick.objects.filter(
        status=RevaluationTick.Status.RUNNING, started_at__lt=overdue
    ):
        missing = tick.shards.filter(completed_at__isnull=True).count()
        logger.warning(
            "revaluation tick %s abandoned: %s shard(s) never reported", tick.pk, missing
        )
        RevaluationTick.objects.filter(pk=tick.pk, status=RevaluationTick.Status.RUNNING).update(
            status=RevaluationTick.Status.ABANDONED
        )


def _frozen_prices() -> tuple[dict[str, str], dict[str, str]]:
    marks = {
        symbol: str(price)
        for symbol, price in MarkPrice.objects.values_list("instrument__symbol", "mark_price")
    }
    prices = {
        symbol: str(price)
        for symbol, price in AssetPrice.objects.values_list("asset__symbol", "price")
    }
    return marks, prices


def _refresh_class(*, now: datetime) -> int | None:
    """The class of healthy accounts the tick starting `now` writes: the one after the last
    complete tick's (so any SNAPSHOT_REFRESH_TICKS complete ticks in a row write every
    account), the first when that tick wrote every account. None (every account) before any
    tick completed, and when the last one started longer ago than a tick may take
    (REVALUATION_TICK_TIMEOUT_S, after which a tick is abandoned): the revaluation stopped,
    every row is stale, and the pages would say so for a whole refresh."""
    last = list(
        RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE)
        .order_by("-pk")
        .values_list("refresh_class", "started_at")[:1]
    )
    if not last or last[0][1] < now - timedelta(seconds=settings.REVALUATION_TICK_TIMEOUT_S):
        return None
    return 0 if last[0][0] is None else (last[0][0] + 1) % settings.SNAPSHOT_REFRESH_TICKS


def revaluation_tick_start(*, now: datetime) -> TickStart:
    """Freeze the prices of a new tick and cut the accounts into shards (by id range)."""
    with _tick_lock() as acquired:
        if not acquired:
            return TickStart(tick=None, skipped="another dispatcher holds the lock")
        _abandon_overdue_ticks(now=now)
        if RevaluationTick.objects.filter(status=RevaluationTick.Status.RUNNING).exists():
            return TickStart(tick=None, skipped="the previous tick is still running")
        try:
            params = parameters_in_force(now)
        except ApplicationError as refusal:
            return TickStart(tick=None, skipped=refusal.message)
        book_changes_prune(keep_s=settings.BOOK_CHANGE_KEEP_S)
        funding_rates = _cash_flows_settle(now=now)
        marks, asset_prices = _frozen_prices()
        stale = stale_symbols(now=now, max_age_s=params.price_guard_max_age_s)
        doubts = unfit_prices(now=now, max_age_s=params.price_guard_max_age_s)
        if doubts:
            logger.warning(
                "prices unfit at the freeze (liquidation checks materiality): %s", doubts
            )
        runs, n_accounts = account_id_runs(settings.REVALUATION_SHARD_SIZE)
        with transaction.atomic():
            tick = RevaluationTick.objects.create(
                started_at=now,
                parameter_version=params,
                marks=marks,
                asset_prices=asset_prices,
                stale_symbols=stale,
                price_doubts=doubts,
                volatility=tick_volatility(
                    until=now,
                    params=params,
                    previous=RevaluationTick.objects.exclude(volatility={}).order_by("-pk").first(),
                ),
                n_shards=len(runs),
                n_accounts=n_accounts,
                funding_rates=funding_rates,
                refresh_class=_refresh_class(now=now),
                status=RevaluationTick.Status.RUNNING if runs else RevaluationTick.Status.COMPLETE,
                completed_at=None if runs else now,
            )
            shards = RevaluationShard.objects.bulk_create(
                RevaluationShard(tick=tick, number=n, first_account_id=first, last_account_id=last)
                for n, (first, last) in enumerate(runs)
            )
            if not runs:  # no account to settle
                funding_rates_complete(rate_ids=funding_rates, now=now)
        return TickStart(tick=tick, shard_ids=[s.pk for s in shards])


def _cash_flows_settle(*, now: datetime) -> list[int]:
    """Funding times that have passed are claimed (the ids of the open funding rates) and
    expiries that have passed get their settlement price, before the tick freezes its prices;
    each shard settles both for its own accounts before it reads them, so this tick values
    every account after them. A failure is logged and left to the next tick (each step is one
    transaction, idempotent)."""
    funding_rates = []
    try:
        if settings.FUNDING_SETTLEMENT_ENABLED:
            funding_rates = funding_claim_due(now=now)
    except DatabaseError:
        logger.exception("funding claim failed; the next tick tries again")
    try:
        expiry_claim_due(now=now)
    except (DatabaseError, ApplicationError):
        logger.exception("expiry settlement failed; the next tick tries again")
    return funding_rates


@dataclass(frozen=True)
class ShardResult:
    shard_id: int
    accounts: int = 0
    to_liquidate: list[tuple[int, int]] = field(default_factory=list)  # (account id, tick id)
    notifications: list[int] = field(default_factory=list)
    transitions: int = 0
    snapshots: int = 0  # written: the accounts at risk, changing state... (`_snapshot_rows`)
    funding_positions: int = 0
    funding_s: float = 0.0
    expiry_positions: int = 0
    expiry_s: float = 0.0
    load_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0
    already_done: bool = False
    # Whether the book came from the machine's copy of the shard, and how many accounts' rows
    # were read from the database (all of them when it did not: `margin.selectors.book_rows`).
    book_cached: bool = False
    book_accounts_read: int = 0


def _aligned(names: tuple[str, ...], frozen: dict[str, str], fallback: np.ndarray) -> np.ndarray:
    """The tick's frozen prices in the book's order; a name the tick has no price for keeps the
    book's own (an instrument priced after the freeze)."""
    return np.array(
        [float(frozen[name]) if name in frozen else fallback[i] for i, name in enumerate(names)]
    )


def _stress(book, marks, asset_prices, revaluation, tick, portfolio, grid=None, held=None) -> tuple:
    """Every account's worst loss under the tick's stress model (floors where there is no
    history: never zero; its options, `held`, revalued in full under each move), its figures
    under its margin scheme (the options grid's for the accounts holding options, `grid`), and
    every position's liquidation price under it (for a portfolio account where the balance
    meets max(tiered MM, stress loss), as its trader page and explain show)."""
    model = tick_stress_model(tick, book.asset_names)
    stress = stress_margin(book, marks, asset_prices, model, revaluation=revaluation, held=held)
    figures = scheme_figures(
        revaluation,
        stress.worst_loss,
        portfolio,
        margin_call_ratio=float(tick.parameter_version.margin_call_ratio),
        grid=grid,
    )
    liquidation = portfolio_liquidation_prices(
        book, marks, asset_prices, revaluation, model, portfolio
    )
    return stress.worst_loss, figures, liquidation


def _options_grid(slice_, marks, tick) -> tuple[PortfolioGrid | None, HeldOptions | None]:
    """The portfolio grid of the shard's accounts holding options and those options, or
    None, None."""
    found = option_book_of(slice_, now=tick.started_at)
    if found is None:
        return None, None
    options, market = found
    return portfolio_grid(options, marks, market.forwards, market.vols), HeldOptions(
        options, market
    )


def _positions_packed(slice_, revaluation: Revaluation, liquidation: np.ndarray) -> np.ndarray:
    """Every position's figures as MarginSnapshot.POSITION_RECORD, ordered by account (each
    account's records one after the other), with the liquidation prices under each account's
    scheme (`liquidation`). Only what the position row and the tick's marks cannot give back
    (notional, uPnL and initial margin can)."""
    book = slice_.book
    order = np.argsort(book.pos_account, kind="stable")
    records = np.empty(len(order), dtype=MarginSnapshot.POSITION_RECORD)
    records["position_id"] = slice_.position_ids[order]
    records["maintenance_margin"] = revaluation.maintenance_margin[order]
    records["bracket"] = revaluation.bracket[order]
    records["liquidation_price"] = liquidation[order]
    records["bankruptcy_price"] = revaluation.bankruptcy_price[order]
    return records


SNAPSHOT_COLUMNS = (
    "account_id",
    "tick_id",
    "collateral_value",
    "unrealized_pnl",
    "margin_balance",
    "maintenance_margin",
    "initial_margin",
    "margin_ratio",
    "withdrawable",
    "stress_margin",
    "gross_notional",
    "scan_risk",
    "state",
    "binding_scenario",
    "positions",
)
# The account's figures: every column between the keys and (state, binding, positions).
FIGURE_COLUMNS = SNAPSHOT_COLUMNS[2:-3]


def _scan_risk(slice_, grid: PortfolioGrid | None) -> AccountScanRisk:
    """Each account's scan risk and binding scenario on the options grid (0 and "" off it)."""
    n = slice_.book.n_accounts
    if grid is None:
        return AccountScanRisk(scan_risk=np.zeros(n), binding_scenario=[""] * n)
    names = slice_.book.asset_names
    return account_scan_risk(grid, names, len(names), n)


@dataclass(frozen=True)
class _Snapshots:
    """A shard's snapshots, column by column, in the order of `account_ids`."""

    account_ids: np.ndarray
    tick_id: int
    figures: tuple[np.ndarray, ...]  # FIGURE_COLUMNS' values; nan: no figure
    states: list[str]
    bindings: list[str]
    position_counts: np.ndarray  # each account's records in `positions`, in order
    positions: np.ndarray  # MarginSnapshot.POSITION_RECORD

    def of_rows(self, rows: np.ndarray) -> "_Snapshots":
        """The snapshots of the rows where `rows` (a mask) is True."""
        return _Snapshots(
            account_ids=self.account_ids[rows],
            tick_id=self.tick_id,
            figures=tuple(np.asarray(column)[rows] for column in self.figures),
            states=list(itertools.compress(self.states, rows.tolist())),
            bindings=list(itertools.compress(self.bindings, rows.tolist())),
            position_counts=self.position_counts[rows],
            positions=self.positions[np.repeat(rows, self.position_counts)],
        )


def _snapshots(slice_, tick_id, revaluation, figures, stress, scan, states, positions):
    """The account's figures under its margin scheme: MM is the requirement the ratio divides
    by (the tiered MM under the standard scheme), IM and withdrawable follow it; the grid's
    scan risk and binding scenario (`scan`)."""
    book = slice_.book
    return _Snapshots(
        account_ids=slice_.account_ids,
        tick_id=tick_id,
        figures=(
            revaluation.collateral_value,
            revaluation.account_unrealized_pnl,
            revaluation.margin_balance,
            figures.maintenance,
            figures.initial,
            _stored_ratios(figures),
            figures.withdrawable,
            stress,
            sum_by(book.pos_account, revaluation.notional, book.n_accounts),
            scan.scan_risk,
        ),
        states=states,
        bindings=scan.binding_scenario,
        position_counts=np.bincount(book.pos_account, minlength=book.n_accounts),
        positions=positions,
    )


def _last_account_refreshed(tick) -> int:
    """The highest account id below which every account has a snapshot the readers look at
    (`refresh_window_start`): the last account of the oldest tick they look through, the
    first complete tick (which wrote every account) while fewer than a refresh have
    completed. An account opened after it may have missed its refresh class."""
    complete = RevaluationTick.objects.filter(status=RevaluationTick.Status.COMPLETE)
    oldest = refresh_window_start(tick.pk) or complete.order_by("pk").values("pk")[:1]
    last = RevaluationShard.objects.filter(tick_id=oldest).aggregate(Max("last_account_id"))
    return last["last_account_id__max"] or 0


def _snapshot_rows(tick, account_ids, old, new, queue: dict, to_liquidate) -> np.ndarray:
    """Which accounts this tick writes a snapshot of (a mask): every one at risk (not
    healthy), changing state, to be liquidated (`to_liquidate`, the ADL and the liquidation
    read its row), among the queue's first rows (`queue`'s heads: the desk's first pages
    read them at this tick) or opened since `_last_account_refreshed`, and the healthy ones
    of the tick's refresh class; every account when the tick has none. The rest keep their
    latest row, at most SNAPSHOT_REFRESH_TICKS complete ticks old
    (`margin.selectors.market.snapshots_as_of`)."""
    if tick.refresh_class is None:
        return np.ones(len(account_ids), dtype=bool)
    heads = [
        row[2] for by_state in queue["heads"].values() for rows in by_state.values() for row in rows
    ]
    return (
        (account_ids % settings.SNAPSHOT_REFRESH_TICKS == tick.refresh_class)
        | (new != LEVEL[AccountState.HEALTHY])
        | (old != new)
        | (account_ids > _last_account_refreshed(tick))
        | np.isin(account_ids, heads + [account_id for account_id, _ in to_liquidate])
    )


def _snapshots_write_postgresql(snapshots: _Snapshots) -> None:
    """One binary COPY straight into the table: NumPy packs every value, nothing is formatted
    as text. A rerun cannot duplicate: the shard's row is locked and its completion is set in
    this same transaction, so rows are only ever written by the one run that finds the shard
    open (and (account, tick) is unique besides)."""
    n = len(snapshots.account_ids)
    copy_rows(
        MarginSnapshot._meta.db_table,
        SNAPSHOT_COLUMNS,
        [
            int8_field(snapshots.account_ids),
            int8_field(np.full(n, snapshots.tick_id)),
            *(numeric_field(np.asarray(column, dtype=float)) for column in snapshots.figures),
            text_field(snapshots.states),
            text_field(snapshots.bindings),
            bytes_field(
                snapshots.position_counts * MarginSnapshot.POSITION_RECORD.itemsize,
                snapshots.positions.tobytes(),
                unit=MarginSnapshot.POSITION_RECORD.itemsize,
            ),
        ],
    )


def _snapshots_write_orm(snapshots: _Snapshots) -> None:
    """The embedded mode (SQLite): bulk_create, conflicts ignored."""
    bounds = np.concatenate(([0], np.cumsum(snapshots.position_counts))).tolist()
    rows = zip(
        snapshots.account_ids.tolist(),
        zip(*(column.tolist() for column in snapshots.figures), strict=True),
        snapshots.states,
        snapshots.bindings,
        itertools.pairwise(bounds),
        strict=True,
    )
    MarginSnapshot.objects.bulk_create(
        (
            MarginSnapshot(
                account_id=account_id,
                tick_id=snapshots.tick_id,
                **{
                    name: decimal_or_none(value)
                    for name, value in zip(FIGURE_COLUMNS, figures, strict=True)
                },
                state=state,
                binding_scenario=binding,
                positions=snapshots.positions[lo:hi].tobytes(),
            )
            for account_id, figures, state, binding, (lo, hi) in rows
        ),
        batch_size=500,
        ignore_conflicts=True,
    )


def _stored(value: float) -> Decimal | None:
    """A figure as its snapshot column holds it: the binary COPY sends SIGNIFICANT_DIGITS
    digits and NUMERIC(38, 18) rounds them half away from zero; SQLite's rows are rounded to
    10 places (`decimal_or_none`)."""
    if connection.vendor == "postgresql":
        sent = Decimal(f"{value:.{SIGNIFICANT_DIGITS}g}")
        return sent.quantize(Decimal("1e-18"), rounding=ROUND_HALF_UP)
    return decimal_or_none(value)


def _queue_summary(slice_, revaluation, figures, stress, states: list[str]) -> dict:
    """What the desk's queue reads of this shard instead of counting and sorting the tick's
    snapshots (`margin.selectors.desk.queue_snapshots`): per state, how many of its snapshots
    are in the queue (a stored maintenance margin above 0), and for each of the queue's orders
    (`margin.filters.QUEUE_ORDERS`, the same keys in floats) the head of each state's rows
    that its first QUEUE_HEAD_ROWS rows can come from (`margin.engine.queue`)."""
    balance, maintenance = revaluation.margin_balance, figures.maintenance
    queued = maintenance >= 1e-9
    # Below that only the stored decimal says whether the row is above 0.
    for row in np.flatnonzero((maintenance > 0) & ~queued).tolist():
        queued[row] = _stored(float(maintenance[row])) > 0
    ratio = _stored_ratios(figures)
    # Highest ratio first; a null ratio (no equity) goes where "-margin_ratio" puts nulls.
    null = -NULL_KEY if connection.features.nulls_order_largest else NULL_KEY
    keys = {
        "ratio": (np.where(np.isfinite(ratio), -ratio, null), key_error(ratio)),
        "buffer": (balance - maintenance, key_error(balance, maintenance)),
        "size": (-maintenance, key_error(maintenance)),
        "stress": (balance - stress, key_error(balance, stress)),
    }
    by_state = np.array(states)
    rows = {state: np.flatnonzero(queued & (by_state == state)) for state in sorted(set(states))}
    rows = {state: found for state, found in rows.items() if found.size}
    return {
        "counts": {state: int(found.size) for state, found in rows.items()},
        "heads": {
            order: {
                state: queue_head(
                    key[found], error[found], slice_.account_ids[found], QUEUE_HEAD_ROWS
                )
                for state, found in rows.items()
            }
            for order, (key, error) in keys.items()
        },
    }


def _state_changes(
    *, tick, account_ids, owners, old, new, revaluation, figures, call_amount
) -> list[int]:
    """Record each transition (account row, event, audit line) and the margin calls'
    notifications, each with the amount that takes the account back to the warning level and
    its deadline; returns the notifications' ids (to e-mail). The events and audit lines go
    in column by column (`model_rows_insert`), the accounts in one update per state."""
    changed = np.flatnonzero(old != new)
    if not changed.size:
        return []
    now = timezone.now()
    deadline = deadline_of(tick)
    ids = account_ids[changed]
    before = [STATES[level] for level in old[changed].tolist()]
    after = [STATES[level] for level in new[changed].tolist()]
    ratios = [decimal_or_none(r) for r in _stored_ratios(figures)[changed].tolist()]
    balances = [decimal_or_none(b) for b in revaluation.margin_balance[changed].tolist()]
    amounts = [Decimal(f"{amount:.2f}") for amount in call_amount[changed].tolist()]
    called = (new[changed] == LEVEL[AccountState.MARGIN_CALL]) & (new[changed] > old[changed])
    for state in sorted(set(after)):
        chosen = [account for account, to in zip(ids.tolist(), after, strict=True) if to == state]
        MarginAccount.objects.filter(pk__in=ids_in(chosen)).update(
            state=state, state_changed_at=now
        )
    n = len(ids)
    model_rows_insert(
        AccountEvent,
        {
            "account_id": ids,
            "tick_id": np.full(n, tick.pk),
            "at": [now] * n,
            "kind": [AccountEvent.Kind.STATE_CHANGE.value] * n,
            "from_state": before,
            "to_state": after,
            "margin_ratio": [math.nan if ratio is None else float(ratio) for ratio in ratios],
            "detail": [
                {"margin_balance": str(balance)}
                | ({"amount": str(amount), "deadline": deadline.isoformat()} if call else {})
                for balance, amount, call in zip(balances, amounts, called.tolist(), strict=True)
            ],
        },
    )
    audit_columns(
        {
            "at": [now] * n,
            "action": ["account.state_change"] * n,
            "margin_account_id": ids,
            "subject": [f"tick:{tick.pk}"] * n,
            "before": [{"state": state} for state in before],
            "after": [
                {"state": state, "margin_ratio": str(ratio), "margin_balance": str(balance)}
                for state, ratio, balance in zip(after, ratios, balances, strict=True)
            ],
            "reason": ["revaluation"] * n,
        },
    )
    notifications = [
        Notification(
            user_id=owners[changed[row]],
            account_id=int(ids[row]),
            kind=Notification.Kind.MARGIN_CALL,
            text=(
                f"Margin call on account #{ids[row]}: margin ratio {ratios[row]:.2%} "
                f"(margin balance {balances[row]:.2f} USD). Add {amounts[row]:.2f} USD of "
                f"collateral (or reduce positions) by {deadline:%Y-%m-%d %H:%M} UTC, "
                "or the account turns reduce-only; liquidation comes at the line."
            ),
        )
        for row in np.flatnonzero(called).tolist()
    ]
    return [n.pk for n in Notification.objects.bulk_create(notifications)]


# What a shard reads of each account beside the book (in the book's own read of the accounts):
# its state, scheme, and margin call deadline and reduce-only flags.
SHARD_ACCOUNT_FIELDS = (
    "state",
    "margin_scheme",
    "margin_call_due_at",
    "reduce_only",
    "reduce_only_automatic",
)


def revaluation_shard_run(*, shard_id: int) -> ShardResult:
    """Revalue one shard of a tick on the tick's frozen prices and write its results."""
    shard = RevaluationShard.objects.select_related("tick__parameter_version").get(pk=shard_id)
    if shard.completed_at is not None:
        return ShardResult(shard_id=shard_id, already_done=True)
    tick, params = shard.tick, shard.tick.parameter_version

    # The tick's funding and the settled expiries first, for this shard's accounts (each its
    # own transaction: a shard run again pays only what is still owed), so the book read next
    # holds them. A failure leaves the shard to its redelivery or the tick to be abandoned:
    # the funding stays owed, the expired positions open.
    funding_started = time.perf_counter()
    funded = funding_settle_accounts(
        rate_ids=tick.funding_rates,
        first_account_id=shard.first_account_id,
        last_account_id=shard.last_account_id,
        now=tick.started_at,
    )
    expiry_started = time.perf_counter()
    expired = expiry_settle_accounts(
        first_account_id=shard.first_account_id,
        last_account_id=shard.last_account_id,
        now=tick.started_at,
    )
    started = time.perf_counter()
    slice_ = engine_book(
        account_range=(shard.first_account_id, shard.last_account_id),
        parameters=params,
        volatility=tick.volatility or {},
        account_fields=SHARD_ACCOUNT_FIELDS,
    )
    book, accounts = slice_.book, slice_.account_fields
    old = np.array([LEVEL[state] for state in accounts["state"]], dtype=np.int64)
    portfolio = np.array([scheme == PORTFOLIO for scheme in accounts["margin_scheme"]], dtype=bool)
    loaded = time.perf_counter()

    marks = _aligned(book.instrument_names, tick.marks, slice_.marks)
    asset_prices = _aligned(book.asset_names, tick.asset_prices, slice_.asset_prices)
    revaluation = revalue(book, marks, asset_prices)
    grid, held = _options_grid(slice_, marks, tick)
    stress, figures, liquidation = _stress(
        book, marks, asset_prices, revaluation, tick, portfolio, grid, held
    )
    if grid is not None:
        # From here on the pool's uPnL and margin balance count the options at their value.
        revaluation = replace(
            revaluation,
            account_unrealized_pnl=revaluation.account_unrealized_pnl + grid.account_option_pnl,
            margin_balance=revaluation.margin_balance + grid.account_option_pnl,
        )
    new = next_levels(
        old,
        margin_ratio=worst_ratio(book, revaluation, figures.margin_ratio),
        margin_balance=revaluation.margin_balance,
        maintenance_margin=figures.maintenance,
        thresholds=Thresholds.of(params),
    )
    states = [STATES[n] for n in new]
    queue = _queue_summary(slice_, revaluation, figures, stress, states)
    to_liquidate = _liquidation_candidates(tick, slice_, revaluation, new, grid)
    snapshots = _snapshots(
        slice_,
        tick.pk,
        revaluation,
        figures,
        stress,
        _scan_risk(slice_, grid),
        states,
        _positions_packed(slice_, revaluation, liquidation),
    ).of_rows(_snapshot_rows(tick, slice_.account_ids, old, new, queue, to_liquidate))
    computed = time.perf_counter()

    with transaction.atomic():
        locked = RevaluationShard.objects.select_for_update().get(pk=shard_id)
        if locked.completed_at is not None:
            return ShardResult(shard_id=shard_id, already_done=True)
        if connection.vendor == "postgresql":
            _snapshots_write_postgresql(snapshots)
        else:
            _snapshots_write_orm(snapshots)
        notifications = _state_changes(
            tick=tick,
            account_ids=slice_.account_ids,
            owners=slice_.owners.tolist(),
            old=old,
            new=new,
            revaluation=revaluation,
            figures=figures,
            call_amount=margin_call_amount(
                book, revaluation, float(params.warning_ratio), figures.maintenance
            ),
        )
        margin_call_deadlines_apply(
            tick=tick,
            account_ids=slice_.account_ids,
            levels=new,
            due_at=accounts["margin_call_due_at"],
            reduce_only=np.array(accounts["reduce_only"], dtype=bool),
            automatic=np.array(accounts["reduce_only_automatic"], dtype=bool),
        )
        written = time.perf_counter()
        locked.completed_at = timezone.now()
        locked.accounts = book.n_accounts
        locked.load_s, locked.compute_s = loaded - started, computed - loaded
        locked.write_s = written - computed
        locked.queue = queue
        locked.save(
            update_fields=["completed_at", "accounts", "load_s", "compute_s", "write_s", "queue"]
        )
    _tick_complete_if_done(tick)
    return ShardResult(
        shard_id=shard_id,
        accounts=book.n_accounts,
        to_liquidate=to_liquidate,
        notifications=notifications,
        transitions=int(np.count_nonzero(old != new)),
        snapshots=len(snapshots.account_ids),
        funding_positions=funded.positions,
        funding_s=expiry_started - funding_started,
        expiry_positions=expired.positions,
        expiry_s=started - expiry_started,
        load_s=locked.load_s,
        compute_s=locked.compute_s,
        write_s=locked.write_s,
        book_cached=slice_.read.cached,
        book_accounts_read=slice_.read.accounts_read,
    )


def _liquidation_candidates(tick, slice_, revaluation, new, grid) -> list[tuple[int, int]]:
    """Accounts at or past liquidation holding positions (options too: `grid`), and accounts
    with an isolated position past its own line. One exposed to a stale price is handed on
    too: the liquidation decides whether that price is material (and then holds back, with a
    `stale_blocked` event and a desk alert)."""
    book = slice_.book
    threshold = float(tick.parameter_version.liquidation_ratio)
    due = new >= LEVEL[AccountState.LIQUIDATION]
    isolated_due = book.pos_isolated & (
        np.nan_to_num(revaluation.isolated_margin_ratio, nan=np.inf) >= threshold
    )
    due[book.pos_account[isolated_due]] = True
    has_positions = np.bincount(book.pos_account, minlength=book.n_accounts) > 0
    if grid is not None:
        has_positions |= grid.holds_options
    rows = np.flatnonzero(due & has_positions)
    return [(int(slice_.account_ids[row]), tick.pk) for row in rows]


def _tick_complete_if_done(tick: RevaluationTick) -> bool:
    """Outside the shard's transaction, so the last shard to commit sees all the others. The
    tick's funding rates are then settled for every account."""
    if RevaluationShard.objects.filter(tick_id=tick.pk, completed_at__isnull=True).exists():
        return False
    now = timezone.now()
    completed = RevaluationTick.objects.filter(
        pk=tick.pk, status=RevaluationTick.Status.RUNNING
    ).update(status=RevaluationTick.Status.COMPLETE, completed_at=now)
    if completed:
        funding_rates_complete(rate_ids=tick.funding_rates, now=now)
    return bool(completed)


def snapshots_prune() -> int:
    """Keep the snapshots of the latest SNAPSHOT_KEEP_TICKS ticks only, and the shards' queue
    summaries with them: a summary pages its tick's snapshots, and at 1M accounts it is
    ≈ 2–3 MB a tick that would otherwise stay forever. Never a row that may still be an
    account's latest (a healthy account's, from before `refresh_window_start`)."""
    keep = settings.SNAPSHOT_KEEP_TICKS
    newest = RevaluationTick.objects.order_by("-pk").values_list("pk", flat=True)
    cutoff = list(newest[keep : keep + 1])
    window = refresh_window_start()
    if not cutoff or window is None:
        return 0
    cutoff = min(cutoff[0], window - 1)
    removed, _ = MarginSnapshot.objects.filter(tick_id__lte=cutoff).delete()
    RevaluationShard.objects.filter(tick_id__lte=cutoff, queue__isnull=False).update(queue=None)
    return removed


@dataclass(frozen=True)
class TickRun:
    start: TickStart
    shards: list[ShardResult]
    seconds: float

    @property
    def to_liquidate(self) -> list[tuple[int, int]]:
        return [pair for shard in self.shards for pair in shard.to_liquidate]


def revaluation_tick_run(*, now: datetime) -> TickRun:
    """A whole tick in this process: the same shard code the workers run, one shard after the
    other (the benchmark, tests, and a desk wanting figures right now)."""
    started = time.perf_counter()
    start = revaluation_tick_start(now=now)
    shards = [revaluation_shard_run(shard_id=shard_id) for shard_id in start.shard_ids]
    return TickRun(start=start, shards=shards, seconds=time.perf_counter() - started)

"""Liquidation-cascade runs: queued from the desk, run by a Celery task that writes each
round and its progress to the `CascadeRun` row the browser polls."""

import time
from decimal import Decimal

import numpy as np
from celery import signature
from django.db import transaction
from django.utils import timezone

from margin.engine.cascade import CascadeRound, simulate_cascade
from margin.errors import ApplicationError
from margin.models import Asset, CascadeRun
from margin.selectors.book import desk_book, held_options
from margin.selectors.desk import insurance_fund_value
from margin.services.stress_runs import SCENARIOS, scenario_build

DEFAULT_DEPTH_USD = 5_000_000.0
MAX_ROUNDS = 50
# Rounds kept whole in the saved run; beyond this many liquidated accounts a round keeps ids of
# the first ones only (the counts stay exact).
LISTED_ACCOUNTS = 50
# The task that runs a queued cascade, queued by name: `margin.tasks` imports the services, never
# the other way round.
CASCADE_RUN_TASK = "margin.desk_cascade_run"


def _options(options: dict) -> dict:
    kind = options.get("scenario", "uniform")
    if kind not in SCENARIOS:
        raise ApplicationError(f"Unknown scenario {kind}.", extra={"scenario": "Unknown."})
    try:
        rounds = int(options.get("max_rounds", 10))
        depth = float(options.get("depth_usd", DEFAULT_DEPTH_USD))
    except (TypeError, ValueError) as error:
        raise ApplicationError("Rounds and depth must be numbers.") from error
    if not 1 <= rounds <= MAX_ROUNDS:
        raise ApplicationError(
            f"Between 1 and {MAX_ROUNDS} rounds.", extra={"max_rounds": "Out of range."}
        )
    if depth < 0:
        raise ApplicationError("Depth cannot be negative.", extra={"depth_usd": "Negative."})
    return {**options, "scenario": kind, "max_rounds": rounds, "depth_usd": depth}


def cascade_run_start(*, actor, options: dict) -> CascadeRun:
    """Queue a cascade run; the task starts once the row is committed."""
    options = _options(options)
    with transaction.atomic():
        run = CascadeRun.objects.create(
            options=options,
            label=(
                f"{SCENARIOS[options['scenario']]}, depth {options['depth_usd']:,.0f} USD per 1 %, "
                f"up to {options['max_rounds']} rounds"
            ),
            created_by=actor,
        )
        transaction.on_commit(lambda: signature(CASCADE_RUN_TASK, args=(run.pk,)).delay())
    return run


def _round_row(found: CascadeRound, asset_names: tuple[str, ...], account_ids) -> dict:
    return {
        "number": found.number,
        "accounts_liquidated": found.accounts_liquidated,
        "positions_closed": found.positions_closed,
        "liquidated_notional": found.liquidated_notional,
        "deficit": found.deficit,
        "insurance_used": found.insurance_used,
        "insurance_left": found.insurance_left,
        "prices_before": dict(zip(asset_names, found.prices_before, strict=True)),
        "prices": dict(zip(asset_names, found.asset_prices, strict=True)),
        "accounts": [int(account_ids[a]) for a in found.liquidated_accounts[:LISTED_ACCOUNTS]],
    }


def cascade_run_execute(*, run_id: int) -> CascadeRun:
    """Run a queued cascade (the task body). A redelivered task reruns an unfinished run from
    the start and leaves a finished one alone."""
    run = CascadeRun.objects.get(pk=run_id)
    if run.status in (CascadeRun.Status.DONE, CascadeRun.Status.FAILED):
        return run
    started = time.perf_counter()
    CascadeRun.objects.filter(pk=run_id).update(
        status=CascadeRun.Status.RUNNING, progress=0, rounds=[]
    )
    try:
        book_slice = desk_book()
        options = _options(run.options)
        scenario = scenario_build(book_slice=book_slice, kind=options["scenario"], options=options)
        names = book_slice.book.asset_names
        stable = set(Asset.objects.filter(is_settlement=True).values_list("symbol", flat=True))
        depth = np.array([0.0 if name in stable else options["depth_usd"] for name in names])
        rows: list[dict] = []

        def report(found: CascadeRound) -> None:
            rows.append(_round_row(found, names, book_slice.account_ids))
            CascadeRun.objects.filter(pk=run_id).update(
                rounds=rows, progress=min(99, round(100 * found.number / options["max_rounds"]))
            )

        result = simulate_cascade(
            book_slice.book,
            book_slice.marks,
            book_slice.asset_prices,
            scenario.moves[-1],
            depth=depth,
            max_rounds=options["max_rounds"],
            insurance_fund=float(insurance_fund_value()),
            on_round=report,
            held=held_options(book_slice),
        )
    except ApplicationError as error:
        CascadeRun.objects.filter(pk=run_id).update(
            status=CascadeRun.Status.FAILED, error=error.message, finished_at=timezone.now()
        )
        return CascadeRun.objects.get(pk=run_id)
    CascadeRun.objects.filter(pk=run_id).update(
        status=CascadeRun.Status.DONE,
        progress=100,
        rounds=rows,
        accounts_liquidated=result.accounts_liquidated,
        insurance_used=Decimal(repr(result.insurance_used)),
        finished_at=timezone.now(),
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    return CascadeRun.objects.get(pk=run_id)

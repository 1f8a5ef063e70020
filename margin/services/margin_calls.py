"""Margin-call deadlines: a call gives the account until `margin_call_deadline_s`
after it to get back under the margin-call line; past it the account turns reduce-only
automatically, and the job lifts that again once the account is back (state warning or
healthy). Reduce-only set by the desk is never lifted here. Every change is an account event
and an audit line. Called by the revaluation shard inside its transaction."""

from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from margin.db import ids_in
from margin.engine.states import LEVEL
from margin.models import AccountEvent, AccountState, MarginAccount
from margin.packed_write import model_rows_insert
from margin.services.audit import audit_columns

CALLED = LEVEL[AccountState.MARGIN_CALL]


def deadline_of(tick) -> datetime:
    """A margin call raised at this tick is due by then."""
    return tick.started_at + timedelta(seconds=tick.parameter_version.margin_call_deadline_s)


def margin_call_deadlines_apply(
    *,
    tick,
    account_ids: np.ndarray,
    levels: np.ndarray,
    due_at: list[datetime | None],
    reduce_only: np.ndarray,
    automatic: np.ndarray,
) -> dict[str, list[int]]:
    """Start, keep or clear each account's deadline; turn reduce-only on past it and off once
    back. Returns the account ids touched by each change."""
    now = tick.started_at
    has_due = np.array([d is not None for d in due_at], dtype=bool)
    overdue = np.array([d is not None and d <= now for d in due_at], dtype=bool)
    called = levels >= CALLED
    start = account_ids[called & ~has_due].tolist()
    clear = account_ids[~called & has_due].tolist()
    restrict = account_ids[called & overdue & ~reduce_only].tolist()
    lift = account_ids[~called & reduce_only & automatic].tolist()
    deadline = deadline_of(tick)
    if start:
        MarginAccount.objects.filter(pk__in=ids_in(start)).update(margin_call_due_at=deadline)
    if clear:
        MarginAccount.objects.filter(pk__in=ids_in(clear)).update(margin_call_due_at=None)
    for ids, on in ((restrict, True), (lift, False)):
        if not ids:
            continue
        MarginAccount.objects.filter(pk__in=ids_in(ids)).update(
            reduce_only=on, reduce_only_automatic=on
        )
        why = "margin call deadline passed" if on else "back under the margin-call line"
        n, at = len(ids), timezone.now()
        model_rows_insert(
            AccountEvent,
            {
                "account_id": ids,
                "tick_id": [tick.pk] * n,
                "at": [at] * n,
                "kind": [AccountEvent.Kind.REDUCE_ONLY.value] * n,
                "from_state": [""] * n,
                "to_state": [""] * n,
                "detail": [{"reduce_only": on, "reason": why}] * n,
            },
        )
        audit_columns(
            {
                "at": [at] * n,
                "action": ["account.reduce_only"] * n,
                "margin_account_id": ids,
                "subject": [f"tick:{tick.pk}"] * n,
                "before": [{"reduce_only": not on}] * n,
                "after": [{"reduce_only": on, "automatic": True}] * n,
                "reason": [why] * n,
            },
        )
    return {"started": start, "cleared": clear, "restricted": restrict, "lifted": lift}

"""Margin-call deadlines: a call gives the account until `margin_call_deadline_s`
after it to get back under the margin-call line; past it the account turns reduce-only
automatically, and the job lifts that again once the account is back (state warning or
healthy). Reduce-only set by the desk is never lifted here. Every change is an account event
and an audit line. Called by the revaluation shard inside its transaction."""

from datetime import datetime, timedelta

import numpy as np

from margin.engine.states import LEVEL
from margin.models import AccountEvent, AccountState, AuditEntry, MarginAccount
from margin.services.audit import audit_records

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
        MarginAccount.objects.filter(pk__in=start).update(margin_call_due_at=deadline)
    if clear:
        MarginAccount.objects.filter(pk__in=clear).update(margin_call_due_at=None)
    events, audits = [], []
    for ids, on in ((restrict, True), (lift, False)):
        if not ids:
            continue
        MarginAccount.objects.filter(pk__in=ids).update(reduce_only=on, reduce_only_automatic=on)
        why = "margin call deadline passed" if on else "back under the margin-call line"
        for account_id in ids:
            events.append(
                AccountEvent(
                    account_id=account_id,
                    tick=tick,
                    kind=AccountEvent.Kind.REDUCE_ONLY,
                    detail={"reduce_only": on, "reason": why},
                )
            )
            audits.append(
                AuditEntry(
                    action="account.reduce_only",
                    margin_account_id=account_id,
                    subject=f"tick:{tick.pk}",
                    before={"reduce_only": not on},
                    after={"reduce_only": on, "automatic": True},
                    reason=why,
                )
            )
    AccountEvent.objects.bulk_create(events)
    audit_records(audits)
    return {"started": start, "cleared": clear, "restricted": restrict, "lifted": lift}

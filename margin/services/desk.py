"""The desk's case work on one account: open, assign, note, margin call, reduce-only, close.

Each is one transaction that locks the case (or the account) first and writes its audit line in
the same transaction, so the trail never misses an action nor shows one that was rolled back.
Four-eyes actions (forced reduction, credit tier, parameters) are in `margin.services.proposals`.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import USE_DESK
from margin.errors import ApplicationError
from margin.models import Case, CaseNote, MarginAccount, Notification
from margin.services.audit import audit_record
from margin.services.notifications import notification_send


def _locked_open_case(case: Case) -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    if case.status != Case.Status.OPEN:
        raise ApplicationError(f"Case {case.pk} is closed.")
    return case


def case_open(*, account: MarginAccount, actor, summary: str) -> Case:
    """Open the desk's file on an account; an account has at most one open case."""
    summary = summary.strip()
    if not summary:
        raise ApplicationError("Say why the case is opened.", extra={"summary": "Required."})
    try:
        with transaction.atomic():
            case = Case.objects.create(
                margin_account=account, summary=summary, opened_by=actor, assignee=actor
            )
            audit_record(
                action="case.open",
                actor=actor,
                margin_account=account,
                subject=f"case:{case.pk}",
                after={"summary": summary, "assignee": actor.username},
            )
    except IntegrityError as error:
        existing = Case.objects.filter(margin_account=account, status=Case.Status.OPEN).first()
        raise ApplicationError(
            f"Account #{account.pk} already has an open case"
            + (f" (case {existing.pk})." if existing else ".")
        ) from error
    return case


def case_open_for_system(*, account: MarginAccount, summary: str) -> tuple[Case, bool]:
    """The desk's case for something the system found on an account (a liquidation a stale
    price holds back): its open case when it has one, so a condition found again on the next
    tick opens no second file; else a new case opened by the system (`opened_by` null),
    unassigned, audited. Whether it was opened now. Runs inside the caller's transaction."""
    existing = Case.objects.filter(margin_account=account, status=Case.Status.OPEN).first()
    if existing is not None:
        return existing, False
    summary = summary[: Case._meta.get_field("summary").max_length]
    try:
        with transaction.atomic():
            case = Case.objects.create(margin_account=account, summary=summary, opened_by=None)
    except IntegrityError:  # an officer opened one since
        return Case.objects.get(margin_account=account, status=Case.Status.OPEN), False
    audit_record(
        action="case.open",
        margin_account=account,
        subject=f"case:{case.pk}",
        after={"summary": summary, "opened_by": "system"},
        reason="liquidation",
    )
    return case, True


@transaction.atomic
def case_assign(*, case: Case, actor, assignee) -> Case:
    if not assignee.has_perm(USE_DESK):
        raise ApplicationError(
            f"{assignee.username} is not on the risk desk.", extra={"assignee": "Not a desk user."}
        )
    case = _locked_open_case(case)
    before = case.assignee.username if case.assignee else None
    case.assignee = assignee
    case.save(update_fields=["assignee"])
    audit_record(
        action="case.assign",
        actor=actor,
        margin_account=case.margin_account,
        subject=f"case:{case.pk}",
        before={"assignee": before},
        after={"assignee": assignee.username},
    )
    return case


@transaction.atomic
def case_note_add(*, case: Case, actor, body: str) -> CaseNote:
    body = body.strip()
    if not body:
        raise ApplicationError("A note needs some text.", extra={"body": "Required."})
    case = _locked_open_case(case)
    note = CaseNote.objects.create(case=case, author=actor, body=body)
    audit_record(
        action="case.note",
        actor=actor,
        margin_account=case.margin_account,
        subject=f"case:{case.pk}",
        after={"note": body},
    )
    return note


@transaction.atomic
def case_close(*, case: Case, actor, resolution: str) -> Case:
    resolution = resolution.strip()
    if not resolution:
        raise ApplicationError("Say how the case was resolved.", extra={"resolution": "Required."})
    case = _locked_open_case(case)
    case.status = Case.Status.CLOSED
    case.closed_at = timezone.now()
    case.resolution = resolution
    case.save(update_fields=["status", "closed_at", "resolution"])
    audit_record(
        action="case.close",
        actor=actor,
        margin_account=case.margin_account,
        subject=f"case:{case.pk}",
        before={"status": Case.Status.OPEN},
        after={"status": Case.Status.CLOSED, "resolution": resolution},
    )
    notification_send(
        account=case.margin_account,
        kind=Notification.Kind.CASE_CLOSED,
        text=f"The risk desk closed its case on account #{case.margin_account_id}: {resolution}",
    )
    return case


@transaction.atomic
def account_reduce_only_set(
    *, account: MarginAccount, actor, reduce_only: bool, reason: str, case: Case | None = None
) -> MarginAccount:
    """Restrict the account to reducing its positions (or lift the restriction)."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError(
            "Give the reason the trader will see.", extra={"reason": "Required."}
        )
    account = MarginAccount.objects.select_for_update(no_key=True).get(pk=account.pk)
    if account.reduce_only == reduce_only:
        raise ApplicationError(
            f"Account #{account.pk} is already {'reduce-only' if reduce_only else 'unrestricted'}."
        )
    account.reduce_only = reduce_only
    account.save(update_fields=["reduce_only"])
    audit_record(
        action="account.reduce_only",
        actor=actor,
        margin_account=account,
        subject=f"case:{case.pk}" if case else "",
        before={"reduce_only": not reduce_only},
        after={"reduce_only": reduce_only},
        reason=reason,
    )
    notification_send(
        account=account,
        kind=Notification.Kind.REDUCE_ONLY,
        text=(
            f"The risk desk set account #{account.pk} to reduce-only: orders may only reduce "
            f"your positions. Reason: {reason}"
            if reduce_only
            else f"The risk desk lifted the reduce-only restriction on account #{account.pk}. "
            f"Reason: {reason}"
        ),
    )
    return account


@transaction.atomic
def account_margin_call(
    *, account: MarginAccount, actor, message: str, case: Case | None = None
) -> Notification:
    """Tell the trader to add collateral or reduce (in the app, and by e-mail)."""
    message = message.strip()
    if not message:
        raise ApplicationError("Write the message the trader gets.", extra={"message": "Required."})
    notification = notification_send(
        account=account, kind=Notification.Kind.MARGIN_CALL, text=message
    )
    audit_record(
        action="account.margin_call",
        actor=actor,
        margin_account=account,
        subject=f"case:{case.pk}" if case else "",
        after={"notification": notification.pk, "state": account.state},
        reason=message,
    )
    return notification

"""Four-eyes changes: one officer proposes, a risk manager who is not the proposer approves, and
only then is the change carried out, in the approval's transaction. Proposals expire.

Kinds: forced reduction of a position, credit-tier change of an account, risk parameter change
(proposed through `margin.services.parameters`, which adds the impact preview).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.roles import APPROVE, PROPOSE
from margin.engine.fills import closing_side, slipped_price
from margin.errors import ApplicationError
from margin.models import (
    Case,
    CreditTier,
    Fill,
    MarginAccount,
    MarginScheme,
    Notification,
    Position,
    Proposal,
)
from margin.numbers import money_text, price_text, quantity_text
from margin.selectors.liquidation import stale_prices_now
from margin.selectors.parameters import parameters_in_force
from margin.services.audit import audit_record
from margin.services.notifications import notification_send
from margin.services.parameters import parameter_impact_preview, parameter_version_create
from margin.services.positions import position_fill

DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=7)


def _subject(proposal: Proposal) -> str:
    return f"proposal:{proposal.pk}"


def proposal_create(
    *,
    kind: str,
    payload: dict,
    reason: str,
    proposer,
    account: MarginAccount | None = None,
    case: Case | None = None,
    impact: dict | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Proposal:
    """Record a proposal (validated by the caller for its kind) and audit it."""
    if not proposer.has_perm(PROPOSE):
        raise ApplicationError("Only a risk officer or manager may propose changes.")
    reason = reason.strip()
    if not reason:
        raise ApplicationError("Give the reason for the proposal.", extra={"reason": "Required."})
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise ApplicationError(
            "A proposal lives between a minute and 7 days.", extra={"ttl_hours": "Out of range."}
        )
    with transaction.atomic():
        proposal = Proposal.objects.create(
            kind=kind,
            payload=payload,
            reason=reason,
            proposer=proposer,
            margin_account=account,
            case=case,
            impact=impact,
            expires_at=timezone.now() + ttl,
        )
        audit_record(
            action=f"proposal.create.{kind}",
            actor=proposer,
            margin_account=account,
            subject=_subject(proposal),
            after={"payload": payload, "expires_at": proposal.expires_at.isoformat()},
            reason=reason,
        )
    return proposal


def forced_reduction_propose(
    *,
    position: Position,
    quantity: Decimal,
    reason: str,
    proposer,
    case: Case | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Proposal:
    """Propose closing `quantity` of an open position (at most all of it)."""
    held = abs(position.quantity)
    if held == 0:
        raise ApplicationError("The position is already flat.")
    if not 0 < quantity <= held:
        raise ApplicationError(
            f"Reduce by more than 0 and at most the {held} held.",
            extra={"quantity": f"Between 0 and {held}."},
        )
    return proposal_create(
        kind=Proposal.Kind.FORCED_REDUCTION,
        payload={
            "position": position.pk,
            "instrument": position.instrument.symbol,
            "quantity": str(quantity),
            "side": closing_side(position.quantity),
        },
        reason=reason,
        proposer=proposer,
        account=position.margin_account,
        case=case,
        ttl=ttl,
    )


def credit_tier_change_propose(
    *,
    account: MarginAccount,
    tier: CreditTier,
    reason: str,
    proposer,
    case: Case | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Proposal:
    if tier.pk == account.credit_tier_id:
        raise ApplicationError(
            f"Account #{account.pk} is already in {tier.name}.", extra={"tier": "Unchanged."}
        )
    return proposal_create(
        kind=Proposal.Kind.CREDIT_TIER_CHANGE,
        payload={"from": account.credit_tier.code, "to": tier.code},
        reason=reason,
        proposer=proposer,
        account=account,
        case=case,
        ttl=ttl,
    )


def margin_scheme_change_propose(
    *,
    account: MarginAccount,
    scheme: str,
    reason: str,
    proposer,
    case: Case | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Proposal:
    """Propose moving the account to another margin scheme (standard or portfolio), carried out
    by a risk manager who is not the proposer."""
    if scheme not in MarginScheme.values:
        raise ApplicationError(
            f"Unknown margin scheme {scheme!r}.", extra={"scheme": "Standard or portfolio."}
        )
    if scheme == account.margin_scheme:
        raise ApplicationError(
            f"Account #{account.pk} is already on the {scheme} scheme.",
            extra={"scheme": "Unchanged."},
        )
    return proposal_create(
        kind=Proposal.Kind.MARGIN_SCHEME_CHANGE,
        payload={"from": account.margin_scheme, "to": scheme},
        reason=reason,
        proposer=proposer,
        account=account,
        case=case,
        ttl=ttl,
    )


def parameter_change_propose(
    *, payload: dict, reason: str, proposer, ttl: timedelta = DEFAULT_TTL
) -> Proposal:
    """Propose a parameter change with its impact preview attached for the approver."""
    impact = parameter_impact_preview(payload=payload)
    return proposal_create(
        kind=Proposal.Kind.PARAMETER_CHANGE,
        payload=payload,
        reason=reason,
        proposer=proposer,
        impact=impact,
        ttl=ttl,
    )


def _locked_pending(proposal: Proposal) -> Proposal:
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != Proposal.Status.PENDING:
        raise ApplicationError(f"Proposal {proposal.pk} is {proposal.get_status_display()}.")
    return proposal


def _carry_out_credit_tier_change(proposal: Proposal, approver) -> dict:
    account = MarginAccount.objects.select_for_update(no_key=True).get(
        pk=proposal.margin_account_id
    )
    tier = CreditTier.objects.filter(code=proposal.payload["to"]).first()
    if tier is None:
        raise ApplicationError(f"Credit tier {proposal.payload['to']} no longer exists.")
    before = account.credit_tier.code
    before_name = account.credit_tier.name
    account.credit_tier = tier
    account.save(update_fields=["credit_tier"])
    audit_record(
        action="account.credit_tier",
        actor=approver,
        margin_account=account,
        subject=_subject(proposal),
        before={"credit_tier": before},
        after={"credit_tier": tier.code},
        reason=proposal.reason,
    )
    notification_send(
        account=account,
        kind=Notification.Kind.CREDIT_TIER,
        text=f"The risk desk moved account #{account.pk} from credit tier {before_name} to "
        f"{tier.name}: its collateral haircuts and terms change accordingly. "
        f"Reason: {proposal.reason}",
    )
    return {"credit_tier": tier.code}


def _carry_out_margin_scheme_change(proposal: Proposal, approver) -> dict:
    """The account's requirement changes from the next revaluation tick on."""
    account = MarginAccount.objects.select_for_update(no_key=True).get(
        pk=proposal.margin_account_id
    )
    before, after = account.margin_scheme, proposal.payload["to"]
    if before != proposal.payload["from"]:
        raise ApplicationError("The account's scheme has changed since the proposal: reject it.")
    account.margin_scheme = after
    account.save(update_fields=["margin_scheme"])
    audit_record(
        action="account.margin_scheme",
        actor=approver,
        margin_account=account,
        subject=_subject(proposal),
        before={"margin_scheme": before},
        after={"margin_scheme": after},
        reason=proposal.reason,
    )
    return {"margin_scheme": after}


def _carry_out_forced_reduction(proposal: Proposal, approver) -> dict:
    """Close the proposed quantity at the mark moved against the account by the liquidation
    slippage of the version in force (as the liquidation engine fills), through the ledger's
    forced fill; the proposal is the fill's reference, so it books once."""
    # The account first, as every ledger write locks it: its positions cannot move under us.
    MarginAccount.objects.select_for_update(no_key=True).get(pk=proposal.margin_account_id)
    position = Position.objects.select_related(
        "instrument__mark", "instrument__underlying", "margin_account"
    ).get(pk=proposal.payload["position"], margin_account_id=proposal.margin_account_id)
    quantity = min(Decimal(proposal.payload["quantity"]), abs(position.quantity))
    if quantity <= 0:
        raise ApplicationError("The position is already flat: nothing to reduce.")
    closing = closing_side(position.quantity)
    if closing != proposal.payload["side"]:
        raise ApplicationError("The position has changed side since the proposal: reject it.")
    params = parameters_in_force()
    stale = stale_prices_now(
        tick=None, now=timezone.now(), max_age_s=params.price_guard_max_age_s
    ).keys() & {position.instrument.symbol, position.instrument.underlying.symbol}
    if stale:
        raise ApplicationError(
            f"The price of {', '.join(sorted(stale))} is stale: a forced reduction would trade "
            "on a price nobody can check. Wait for fresh prices, then approve.",
            {"__all__": "stale price"},
        )
    price = slipped_price(
        position.instrument.mark.mark_price, position.quantity, params.liquidation_slippage
    )
    before = position.quantity
    receipt = position_fill(
        account=position.margin_account,
        instrument=position.instrument.symbol,
        side=closing,
        quantity=quantity,
        price=price,
        reason=Fill.Reason.DESK,
        reference=_subject(proposal),
        actor=approver,
    )
    position.refresh_from_db(fields=["quantity"])
    outcome = {
        "instrument": position.instrument.symbol,
        "quantity_before": str(before),
        "quantity_after": str(position.quantity),
        "price": str(price),
        "journal": receipt.journal_id,
        "fill": receipt.fill_id,
    }
    audit_record(
        action="account.forced_reduction",
        actor=approver,
        margin_account=position.margin_account,
        subject=_subject(proposal),
        before={"instrument": position.instrument.symbol, "quantity": str(before)},
        after=outcome,
        reason=proposal.reason,
    )
    realized = receipt.details.get("realized_pnl")
    notification_send(
        account=position.margin_account,
        kind=Notification.Kind.FORCED_REDUCTION,
        text=f"The risk desk reduced your {position.instrument.symbol} position by "
        f"{quantity_text(quantity)} at {price_text(price)} (from {quantity_text(abs(before))} to "
        f"{quantity_text(abs(position.quantity))})"
        + (f", realized PnL {money_text(Decimal(realized), 'USDT')}" if realized else "")
        + f". Reason: {proposal.reason}",
    )
    return outcome


def _carry_out_parameter_change(proposal: Proposal, approver) -> dict:
    version = parameter_version_create(proposal=proposal, actor=approver)
    return {"version": version.number, "effective_at": version.effective_at.isoformat()}


CARRY_OUT = {
    Proposal.Kind.FORCED_REDUCTION: _carry_out_forced_reduction,
    Proposal.Kind.CREDIT_TIER_CHANGE: _carry_out_credit_tier_change,
    Proposal.Kind.MARGIN_SCHEME_CHANGE: _carry_out_margin_scheme_change,
    Proposal.Kind.PARAMETER_CHANGE: _carry_out_parameter_change,
}


def _expire(proposal: Proposal, now) -> None:
    proposal.status = Proposal.Status.EXPIRED
    proposal.decided_at = now
    proposal.save(update_fields=["status", "decided_at"])
    audit_record(
        action="proposal.expire",
        margin_account=proposal.margin_account,
        subject=_subject(proposal),
        before={"status": Proposal.Status.PENDING},
        after={"status": Proposal.Status.EXPIRED},
    )


def proposal_approve(*, proposal: Proposal, approver, note: str = "") -> Proposal:
    """Approve and carry out a pending proposal; the approver must hold the manager's right and
    not be the proposer. An expired proposal is marked so and refused."""
    if not approver.has_perm(APPROVE):
        raise ApplicationError("Only a risk manager may approve a proposal.")
    now = timezone.now()
    with transaction.atomic():
        proposal = _locked_pending(proposal)
        if proposal.proposer_id == approver.pk:
            raise ApplicationError("Four-eyes: you cannot approve your own proposal.")
        if proposal.expires_at <= now:
            _expire(proposal, now)
            expired = True
        else:
            expired = False
            result = CARRY_OUT[proposal.kind](proposal, approver)
            proposal.status = Proposal.Status.EXECUTED
            proposal.approver = approver
            proposal.decided_at = now
            proposal.decision_note = note.strip()
            proposal.result = result
            proposal.save(
                update_fields=["status", "approver", "decided_at", "decision_note", "result"]
            )
            audit_record(
                action=f"proposal.approve.{proposal.kind}",
                actor=approver,
                margin_account=proposal.margin_account,
                subject=_subject(proposal),
                before={"status": Proposal.Status.PENDING, "proposer": proposal.proposer.username},
                after={"status": Proposal.Status.EXECUTED, "result": result},
                reason=proposal.decision_note,
            )
    if expired:
        raise ApplicationError(f"Proposal {proposal.pk} expired at {proposal.expires_at:%H:%M}.")
    return proposal


@transaction.atomic
def proposal_reject(*, proposal: Proposal, actor, note: str) -> Proposal:
    """A manager rejects, or the proposer withdraws, a pending proposal."""
    proposal = _locked_pending(proposal)
    if not (actor.has_perm(APPROVE) or actor.pk == proposal.proposer_id):
        raise ApplicationError("Only a risk manager or the proposer may reject a proposal.")
    note = note.strip()
    if not note:
        raise ApplicationError("Say why.", extra={"note": "Required."})
    proposal.status = Proposal.Status.REJECTED
    proposal.approver = None if actor.pk == proposal.proposer_id else actor
    proposal.decided_at = timezone.now()
    proposal.decision_note = note
    proposal.save(update_fields=["status", "approver", "decided_at", "decision_note"])
    audit_record(
        action="proposal.reject",
        actor=actor,
        margin_account=proposal.margin_account,
        subject=_subject(proposal),
        before={"status": Proposal.Status.PENDING},
        after={"status": Proposal.Status.REJECTED},
        reason=note,
    )
    return proposal


def proposals_expire(*, now=None) -> int:
    """Mark every pending proposal past its expiry as expired (the periodic job); one
    transaction per proposal so that a long backlog never holds many locks."""
    now = now or timezone.now()
    due = Proposal.objects.filter(status=Proposal.Status.PENDING, expires_at__lte=now)
    expired = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            proposal = Proposal.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if proposal and proposal.status == Proposal.Status.PENDING:
                _expire(proposal, now)
                expired += 1
    return expired

"""Leverage, isolated margin, and switching a position between cross and isolated margin.

A position's leverage sets its initial margin (notional / leverage) and may not exceed its
leverage bracket's maximum at the current notional. Moving a position to isolated fences the
margin the trader chooses from the cross wallet (settlement asset); moving it back releases it.
Whatever moves, neither the cross pool nor an isolated position may end under its initial
margin (unrealized losses included).
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from margin.engine.types import CROSS, ISOLATED, ZERO
from margin.errors import ApplicationError
from margin.models import JournalKind
from margin.numbers import money_text
from margin.selectors.accounts import AccountState, PositionState, free_collateral
from margin.services.account_state import isolated_id, wallet_id
from margin.services.ledger import Line, journal_post
from margin.services.positions import OPTIONS_CROSS_ONLY, position_save
from margin.services.validation import amount_parse, instrument_check
from margin.services.writes import Plan, Receipt, Write, as_text

MAX_LEVERAGE_DECIMALS = Decimal("0.01")


@dataclass(frozen=True)
class PositionPlan(Plan):
    instrument: str = ""
    # Settlement asset moved from the cross wallet into the isolated account (− back out).
    into_isolated: Decimal = ZERO


def _refused(plan: PositionPlan, message: str, field: str) -> PositionPlan:
    return replace(plan, refusal=message, refusal_field=field)


def _margin_checks(state: AccountState, plan: PositionPlan, field: str) -> PositionPlan:
    """Neither side under its initial margin after the change; no wallet left negative."""
    after = plan.after
    wallet = after.wallets.get(state.settlement, ZERO)
    if wallet < 0:
        return _refused(
            plan,
            f"The {state.settlement} wallet holds only "
            f"{as_text(state.wallets.get(state.settlement, ZERO))} {state.settlement}.",
            field,
        )
    moved = after.positions[plan.instrument]
    if not moved.quantity:
        return plan
    quote = after.quote()
    shortfall = after.isolated_shortfall(quote, plan.instrument) if moved.is_isolated else ZERO
    if shortfall > 0:
        return _refused(
            plan,
            f"The isolated margin of {plan.instrument} would be {money_text(shortfall, 'USD')} "
            "under its initial margin (unrealized loss included).",
            field,
        )
    free = free_collateral(after)
    if free < 0:
        return _refused(
            plan,
            f"The cross pool would be {money_text(-free, 'USD')} under its initial margin "
            "(unrealized losses included).",
            field,
        )
    return plan


def _post(state: AccountState, plan: PositionPlan, *, operation: str, actor) -> Receipt:
    """Save the position's settings and move `into_isolated` between wallet and isolated."""
    moved = plan.after.positions[plan.instrument]
    position_id = position_save(state, moved, opened=False)
    journal = None
    if plan.into_isolated:
        settle = state.asset_ids[state.settlement]
        wallet = wallet_id(state, state.settlement)
        isolated = isolated_id(state, plan.instrument, position_id)
        journal = journal_post(
            kind=JournalKind.ISOLATED_TRANSFER,
            margin_account_id=state.account_id,
            created_by_id=getattr(actor, "pk", None),
            memo=f"{operation} {plan.instrument}",
            lines=[
                Line(wallet, settle, -plan.into_isolated),
                Line(isolated, settle, plan.into_isolated),
            ],
        )
    return Receipt(
        operation=operation,
        margin_account_id=state.account_id,
        journal_id=journal.pk if journal else None,
        position_id=position_id,
        details=plan.details,
    )


def _leverage_plan(state: AccountState, *, instrument: str, leverage: Decimal) -> PositionPlan:
    """Set a position's leverage (before opening it, or while open) within its bracket's cap."""
    symbol = instrument_check(state, instrument)
    wanted = amount_parse(leverage, field="leverage")
    if wanted < 1 or wanted != wanted.quantize(MAX_LEVERAGE_DECIMALS):
        raise ApplicationError(
            f"Leverage must be at least 1 with at most 2 decimals, got {leverage}.",
            {"leverage": "at least 1, 2 decimals"},
        )
    if state.is_option(symbol):
        raise ApplicationError(
            f"{symbol} is an option: it has no leverage (its premium is paid in full and the "
            "portfolio grid sets a short's requirement).",
            {"leverage": "not for options"},
        )
    position = state.position(symbol)
    # The bracket is the owner's: of what they hold of the instrument over all their accounts.
    notional = state.owner_notional(symbol)
    _, bracket = state.terms.brackets[symbol].bracket_for(notional)
    moved = replace(position, leverage=wanted)
    planned = PositionPlan(
        after=state.with_position(moved),
        instrument=symbol,
        details={"instrument": symbol, "leverage": as_text(wanted)},
    )
    if wanted > bracket.max_leverage:
        return _refused(
            planned,
            f"Leverage {as_text(wanted)}x is above the {as_text(bracket.max_leverage)}x "
            f"maximum of {symbol}'s bracket at a notional of {money_text(notional, 'USD')} "
            "(over all your accounts).",
            "leverage",
        )
    return _margin_checks(state, planned, "leverage")


position_leverage_set = Write(operation="position_leverage_set", plan=_leverage_plan, post=_post)


def _isolated_position(state: AccountState, instrument: str) -> PositionState:
    position = state.position(instrument_check(state, instrument))
    if not position.is_isolated:
        raise ApplicationError(
            f"{instrument} is in cross margin: switch it to isolated first.",
            {"instrument": "not isolated"},
        )
    return position


def _isolated_transfer_plan(
    state: AccountState, *, instrument: str, amount, direction: int
) -> PositionPlan:
    """`direction` +1 adds margin from the cross wallet, −1 takes it back."""
    position = _isolated_position(state, instrument)
    moved_amount = direction * amount_parse(amount, field="amount")
    if direction < 0 and state.reduce_only:
        raise ApplicationError(
            "This account is reduce-only (an unanswered margin call or the desk): isolated "
            "margin cannot be removed until it is lifted.",
            {"amount": "reduce-only"},
        )
    if direction < 0 and -moved_amount > position.isolated_margin:
        raise ApplicationError(
            f"{instrument} holds {as_text(position.isolated_margin)} of isolated margin; "
            f"{as_text(-moved_amount)} cannot be removed.",
            {"amount": "more than the isolated margin"},
        )
    moved = replace(position, isolated_margin=position.isolated_margin + moved_amount)
    planned = PositionPlan(
        after=state.with_position(moved).with_wallet(state.settlement, -moved_amount),
        instrument=position.instrument,
        into_isolated=moved_amount,
        details={"instrument": position.instrument, "amount": as_text(abs(moved_amount))},
    )
    return _margin_checks(state, planned, "amount")


def _isolated_add_plan(state: AccountState, *, instrument: str, amount: Decimal) -> PositionPlan:
    """Move `amount` of the settlement asset from the cross wallet to an isolated position."""
    return _isolated_transfer_plan(state, instrument=instrument, amount=amount, direction=1)


def _isolated_remove_plan(state: AccountState, *, instrument: str, amount: Decimal) -> PositionPlan:
    """Move `amount` back from an isolated position to the cross wallet, leaving the position
    at least its initial margin."""
    return _isolated_transfer_plan(state, instrument=instrument, amount=amount, direction=-1)


isolated_margin_add = Write(operation="isolated_margin_add", plan=_isolated_add_plan, post=_post)
isolated_margin_remove = Write(
    operation="isolated_margin_remove", plan=_isolated_remove_plan, post=_post
)


def _switch_plan(
    state: AccountState,
    *,
    instrument: str,
    mode: Literal["cross", "isolated"],
    isolated_margin: Decimal | None = None,
) -> PositionPlan:
    """Switch a position between cross and isolated, open or flat. To isolated: fence
    `isolated_margin` (at least the position's initial margin plus its unrealized loss) from
    the cross wallet; to cross: release it all. Refused, with the reason, when either side would
    end under its initial margin."""
    symbol = instrument_check(state, instrument)
    if mode not in (CROSS, ISOLATED):
        raise ApplicationError(
            f"Margin mode must be cross or isolated, got {mode!r}.", {"mode": "unknown mode"}
        )
    if mode == ISOLATED and state.is_option(symbol):
        raise ApplicationError(OPTIONS_CROSS_ONLY, {"mode": "cross only"})
    position = state.position(symbol)
    if position.margin_mode == mode:
        raise ApplicationError(f"{symbol} is already in {mode} margin.", {"mode": "unchanged"})
    if mode == ISOLATED:
        fenced = (
            amount_parse(isolated_margin, field="isolated_margin")
            if position.quantity or isolated_margin is not None
            else ZERO
        )
    else:
        if isolated_margin is not None:
            raise ApplicationError(
                "Moving to cross releases all the isolated margin: give no amount.",
                {"isolated_margin": "not for a move to cross"},
            )
        fenced = -position.isolated_margin
    moved = replace(position, margin_mode=mode, isolated_margin=position.isolated_margin + fenced)
    details = {"instrument": symbol, "mode": mode, "isolated_margin": as_text(abs(fenced))}
    planned = PositionPlan(
        after=state.with_position(moved).with_wallet(state.settlement, -fenced),
        instrument=symbol,
        into_isolated=fenced,
        details=details,
    )
    return _margin_checks(state, planned, "isolated_margin" if mode == ISOLATED else "mode")


position_margin_mode_switch = Write(
    operation="position_margin_mode_switch", plan=_switch_plan, post=_post
)

"""Fills: a fill opens, increases, reduces, closes or flips a position (one-way mode).

Realized PnL is booked against the `market` account and fees to the `fees` account, in the
settlement asset, on the cross wallet, or on the position's isolated account when it is
isolated. An isolated position that opens or grows is topped up from the cross wallet to its
initial margin; one that closes hands what is left back to the cross wallet.

An option's premium changes hands at every fill (Deribit, OKX, Bybit): a buyer pays the
premium to the `market` account, a seller receives it (and carries the grid's requirement),
an expiry pays the intrinsic value; options live in the cross pool only. Their fee is
Deribit's: the taker rate on the underlying's value, at most `OPTION_FEE_PREMIUM_CAP` of the
premium.
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from django.db.models import Q
from django.utils import timezone

from margin.db import execute, insert, table
from margin.engine.fills import SIDES, FillMath, Side, fill_math, ledger_amount
from margin.engine.liquidity import concentration_refusal
from margin.engine.types import ZERO
from margin.errors import ApplicationError
from margin.models import (
    Fill,
    Instrument,
    JournalKind,
    LedgerAccountKind,
    MarginAccount,
    Position,
)
from margin.numbers import money_text
from margin.selectors.accounts import AccountState, PositionState, free_collateral
from margin.selectors.liquidity import open_interest
from margin.services.account_state import isolated_id, wallet_id
from margin.services.ledger import QUANTUM, Line, journal_post
from margin.services.validation import amount_parse, instrument_check
from margin.services.writes import Plan, Receipt, Write, as_text, write_run

FORCED_REASONS = (
    Fill.Reason.LIQUIDATION,
    Fill.Reason.ADL,
    Fill.Reason.DESK,
    Fill.Reason.SETTLEMENT,
)
FORCED_JOURNAL_KINDS = {
    Fill.Reason.LIQUIDATION: JournalKind.LIQUIDATION,
    Fill.Reason.ADL: JournalKind.ADL,
    Fill.Reason.DESK: JournalKind.FILL,
    Fill.Reason.SETTLEMENT: JournalKind.SETTLEMENT,
}


OPTION_FEE_PREMIUM_CAP = Decimal("0.125")
OPTIONS_CROSS_ONLY = (
    "Options are margined in the cross pool only (the portfolio grid nets them against the "
    "account's other positions on the underlying); switch this position to cross."
)


@dataclass(frozen=True)
class FillPlan(Plan):
    instrument: str = ""
    delta: Decimal = ZERO
    price: Decimal = ZERO
    fee: Decimal = ZERO
    math: FillMath | None = None
    # What the market pays the account before the fee: a linear fill's realized PnL, an
    # option fill's premium (− delta × price).
    cash_flow: Decimal = ZERO
    # Settlement-asset moves between the cross wallet and the isolated account (+ into it),
    # and what the insurance fund pays in when a forced close leaves it negative.
    isolated_transfer: Decimal = ZERO
    insurance_cover: Decimal = ZERO


def _refused(plan: FillPlan, message: str, field: str = "quantity") -> FillPlan:
    return replace(plan, refusal=message, refusal_field=field)


def _fill_plan(
    state: AccountState,
    *,
    instrument: str,
    side: str,
    quantity,
    price=None,
    fee=None,
    forced: bool = False,
) -> FillPlan:
    """A market fill at the mark with the taker fee (`price` None), or a forced fill at `price`
    with `fee` (liquidation, ADL, desk: no margin checks, losses may exceed the margin)."""
    symbol = instrument_check(state, instrument)
    if side not in SIDES:
        raise ApplicationError(f"Side must be buy or sell, got {side!r}.", {"side": "buy or sell"})
    size = amount_parse(quantity, field="quantity")
    option = state.is_option(symbol)
    if price is None:
        fill_price = state.marks[symbol]
    else:
        # An option expiring out of the money settles at 0.
        fill_price = amount_parse(price, field="price", allow_zero=option and forced)
    if option and not fill_price and not forced:
        raise ApplicationError(
            f"{symbol} is marked at 0: it has no premium to trade.", {"instrument": "no premium"}
        )
    if fee is None:
        fill_fee = ledger_amount(_taker_fee(state, symbol, size, fill_price))
    else:
        fill_fee = amount_parse(fee, field="fee", allow_zero=True)
    delta = SIDES[side] * size
    before = state.position(symbol)
    if option and before.is_isolated:
        raise ApplicationError(OPTIONS_CROSS_ONLY, {"instrument": "cross only"})
    math = fill_math(
        quantity=before.quantity, entry_price=before.entry_price, delta=delta, price=fill_price
    )
    moved = replace(before, quantity=math.quantity, entry_price=math.entry_price)
    cash_flow = ledger_amount(-delta * fill_price) if option else math.realized_pnl
    cash = cash_flow - fill_fee
    transfer = cover = ZERO
    if before.is_isolated:
        moved, transfer, cover = _isolated_settlement(state, moved, math, cash)
        after = state.with_position(moved).with_wallet(state.settlement, -transfer)
    else:
        after = state.with_position(moved).with_wallet(state.settlement, cash)
    details = {
        "instrument": symbol,
        "side": side,
        "quantity": as_text(size),
        "price": as_text(fill_price),
        "fee": as_text(fill_fee),
        "realized_pnl": as_text(math.realized_pnl),
        "fill": math.kind,
        "position_quantity": as_text(math.quantity),
        "entry_price": as_text(math.entry_price),
    }
    if option:
        details["premium"] = as_text(cash_flow)
    planned = FillPlan(
        after=after,
        details=details,
        instrument=symbol,
        delta=delta,
        price=fill_price,
        fee=fill_fee,
        math=math,
        cash_flow=cash_flow,
        isolated_transfer=transfer,
        insurance_cover=cover,
    )
    return planned if forced else _trade_checks(state, planned, before, moved)


def _taker_fee(state: AccountState, symbol: str, size: Decimal, price: Decimal) -> Decimal:
    """The taker rate on the notional; for an option on the underlying's value (its forward),
    capped at OPTION_FEE_PREMIUM_CAP of the premium (Deribit's option fee)."""
    rate = state.terms.taker_fee_rate
    if not state.is_option(symbol):
        return size * price * rate
    forward = state.options[symbol].forward
    return min(size * forward * rate, size * price * OPTION_FEE_PREMIUM_CAP)


def _isolated_settlement(
    state: AccountState, moved: PositionState, math: FillMath, cash: Decimal
) -> tuple[PositionState, Decimal, Decimal]:
    """The isolated margin after a fill: PnL and fee land on it; a position that adds risk is
    topped up from the wallet to its initial margin (plus any unrealized loss); a closed one
    hands its margin back, the insurance fund covering it first if it went negative."""
    margin = moved.isolated_margin + cash
    if math.kind == "close":
        cover = max(ZERO, -margin)
        return replace(moved, isolated_margin=ZERO), -(margin + cover), cover
    transfer = ZERO
    if math.adds_risk:
        probe = state.with_position(replace(moved, isolated_margin=max(margin, QUANTUM)))
        row = probe.position_quote(probe.quote(), moved.instrument)
        needed = row.initial_margin - min(ZERO, row.unrealized_pnl)
        transfer = max(ZERO, ledger_amount(needed) - margin)
    return replace(moved, isolated_margin=margin + transfer), transfer, ZERO


def _trade_checks(
    state: AccountState, plan: FillPlan, before: PositionState, moved: PositionState
) -> FillPlan:
    """A trader's fill: reduce-only accounts only reduce; one that adds risk must fit its
    leverage bracket and leave the cross pool's free collateral ≥ 0; no wallet or isolated
    margin may be left negative."""
    math = plan.math
    if state.reduce_only and math.adds_risk:
        return _refused(plan, "This account is reduce-only: it may only reduce its positions.")
    if math.adds_risk:
        refusal = _concentration_refusal(state, before, moved)
        if refusal:
            return _refused(plan, refusal)
    after_quote = plan.after.quote()
    if math.adds_risk and not state.is_option(plan.instrument):
        row = plan.after.position_quote(after_quote, plan.instrument)
        if before.leverage > row.max_leverage:
            return _refused(
                plan,
                f"Leverage {as_text(before.leverage)}x is above the {as_text(row.max_leverage)}x "
                f"allowed at a notional of {money_text(row.owner_notional, 'USD')} over all "
                "your accounts; lower the leverage or the size.",
            )
    if math.adds_risk:
        free = free_collateral(plan.after)
        if free < 0:
            return _refused(
                plan,
                f"Not enough free collateral: the order needs {money_text(-free, 'USD')} more "
                "initial margin than the account has.",
            )
    wallet = plan.after.wallets.get(state.settlement, ZERO)
    if wallet < 0:
        return _refused(
            plan,
            f"The {state.settlement} wallet cannot pay this fill's fee, loss or margin "
            f"({as_text(-wallet)} {state.settlement} short); deposit {state.settlement} first.",
        )
    if moved.is_isolated and moved.isolated_margin < 0:
        return _refused(plan, "The isolated margin cannot pay this fill's fee and loss.")
    return plan


def _concentration_refusal(
    state: AccountState, before: PositionState, moved: PositionState
) -> str | None:
    """Above the published share of an instrument's open interest (what the owner holds over
    all their accounts), the instrument is reduce-only for the owner."""
    owner, total = open_interest(state.instrument_ids[moved.instrument], state.owner_id)
    change = abs(moved.quantity) - abs(before.quantity)
    mark = state.marks[moved.instrument]
    return concentration_refusal(
        instrument=moved.instrument,
        owner_notional=(owner + change) * mark,
        open_interest=(total + change) * mark,
        limit_share=state.terms.concentration_limit_share,
        floor=state.terms.concentration_floor_usd,
    )


def _fill_post(*, reason: str, journal_kind: str, fee_kind: str):
    def post(state: AccountState, plan: FillPlan, *, operation: str, actor) -> Receipt:
        moved = plan.after.positions[plan.instrument]
        position_id = position_save(
            state,
            moved,
            opened=plan.math.kind in ("open", "flip"),
            realized_pnl=plan.math.realized_pnl,
        )
        settle, symbol = state.asset_ids[state.settlement], state.settlement
        wallet = wallet_id(state, symbol)
        cash = plan.cash_flow - plan.fee
        lines = [
            Line(state.house_id(LedgerAccountKind.MARKET, symbol), settle, -plan.cash_flow),
            Line(state.house_id(fee_kind, symbol), settle, plan.fee),
        ]
        if moved.is_isolated:
            isolated = isolated_id(state, plan.instrument, position_id)
            insurance = state.house_id(LedgerAccountKind.INSURANCE, symbol)
            lines += [
                Line(isolated, settle, cash + plan.isolated_transfer + plan.insurance_cover),
                Line(wallet, settle, -plan.isolated_transfer),
                Line(insurance, settle, -plan.insurance_cover),
            ]
        else:
            lines.append(Line(wallet, settle, cash))
        journal = journal_post(
            kind=journal_kind,
            margin_account_id=state.account_id,
            created_by_id=getattr(actor, "pk", None),
            memo=f"{plan.details['side']} {plan.details['quantity']} {plan.instrument}",
            lines=lines,
        )
        fill_id = insert(
            Fill,
            position_id=position_id,
            quantity=plan.delta,
            price=plan.price,
            fee=plan.fee,
            realized_pnl=plan.math.realized_pnl,
            reason=reason,
            journal_id=journal.pk if journal else None,
            created_at=timezone.now(),
        )
        return Receipt(
            operation=operation,
            margin_account_id=state.account_id,
            journal_id=journal.pk if journal else None,
            fill_id=fill_id,
            position_id=position_id,
            details=plan.details,
        )

    return post


def _refuse_expired(*, instrument: str, **_order) -> None:
    """A dated future or an option trades until its expiry; after it, only its settlement
    closes positions."""
    dated = Instrument.objects.filter(
        symbol=instrument, kind__in=(Instrument.Kind.FUTURE, Instrument.Kind.OPTION)
    )
    expired = dated.filter(Q(is_active=False) | Q(expiry__lte=timezone.now()))
    if expired.exists():
        raise ApplicationError(
            f"{instrument} has expired: it no longer trades.", {"instrument": "expired"}
        )


def position_save(
    state: AccountState, moved: PositionState, *, opened: bool, realized_pnl: Decimal = ZERO
) -> int:
    """Write a position's size, entry, leverage and mode, add `realized_pnl` to its total;
    create its row the first time."""
    fields = {
        "quantity": moved.quantity,
        "entry_price": moved.entry_price,
        "leverage": moved.leverage,
        "margin_mode": moved.margin_mode,
    }
    if opened:
        fields["opened_at"] = timezone.now()
    if moved.position_id is None:
        return Position.objects.create(
            margin_account_id=state.account_id,
            instrument_id=state.instrument_ids[moved.instrument],
            realized_pnl=realized_pnl,
            **fields,
        ).pk
    fields["updated_at"] = timezone.now()
    execute(
        f"UPDATE {table(Position)} SET realized_pnl = realized_pnl + %s, "
        + ", ".join(f"{name} = %s" for name in fields)
        + " WHERE id = %s",
        [realized_pnl, *fields.values(), moved.position_id],
    )
    return moved.position_id


def _market_fill_plan(
    state: AccountState, *, instrument: str, side: Side, quantity: Decimal
) -> FillPlan:
    """A simulated market fill at the current mark plus the taker fee of the version in force."""
    return _fill_plan(state, instrument=instrument, side=side, quantity=quantity)


position_market_fill = Write(
    operation="position_market_fill",
    plan=_market_fill_plan,
    post=_fill_post(
        reason=Fill.Reason.TRADE, journal_kind=JournalKind.FILL, fee_kind=LedgerAccountKind.FEES
    ),
    check=_refuse_expired,
)


def position_fill(
    *,
    account: MarginAccount,
    instrument: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    reason: Literal["liquidation", "adl", "desk", "settlement"],
    reference: str,
    fee: Decimal = ZERO,
    actor=None,
) -> Receipt:
    """A forced fill at `price` for the liquidation engine and the desk: no margin checks.
    `reference` is the caller's uniqueness: the same reason and reference book once (a replay
    returns the first receipt). `fee` goes to the insurance fund for liquidation and ADL (the
    venue's liquidation fee), to fee income for a desk fill. A closed isolated position left
    negative is made whole by the insurance fund before its account is closed."""
    if reason not in FORCED_REASONS:
        raise ApplicationError(
            f"Reason must be one of {', '.join(FORCED_REASONS)}, got {reason!r}.",
            {"reason": "unknown reason"},
        )
    post = _fill_post(
        reason=reason,
        journal_kind=FORCED_JOURNAL_KINDS[reason],
        fee_kind=LedgerAccountKind.FEES
        if reason == Fill.Reason.DESK
        else LedgerAccountKind.INSURANCE,
    )
    return write_run(
        operation="position_fill",
        account=account,
        request={
            "instrument": instrument,
            "side": side,
            "quantity": str(quantity),
            "price": str(price),
            "fee": str(fee),
            "reason": reason,
        },
        idempotency_key=f"system:{reason}:{reference}",
        expected_fingerprint=None,
        plan=lambda state: _fill_plan(
            state,
            instrument=instrument,
            side=side,
            quantity=quantity,
            price=price,
            fee=fee,
            forced=True,
        ),
        post=lambda state, planned: post(state, planned, operation="position_fill", actor=actor),
    )

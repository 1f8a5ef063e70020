"""Liquidation of an account through the ledger services, following the engine's plan.

One liquidation per account and tick (a Liquidation row unique on both, inserted first and
locked): a redelivered task finds it done and books nothing. Cross pool: the engine's partial
plan (largest maintenance margin first, down to the target ratio) at the mark moved by the
slippage, and a liquidation fee to the insurance fund. A pool the fund can still make whole
has its deficit covered by the fund; one it cannot is auto-deleveraged: its positions close
at their bankruptcy price against the opposing profitable positions ranked by PnL% ×
effective leverage. An isolated position past its own line is closed whole.
"""

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from margin.engine.liquidation import liquidation_plan
from margin.engine.reference import AccountQuote, quote_account
from margin.market.adl import AdlCandidate, adl_queue
from margin.market.selectors import unfit_prices
from margin.models import (
    AccountEvent,
    Asset,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarginAccount,
    MarginSnapshot,
    Notification,
    Position,
    RevaluationTick,
)
from margin.selectors import engine_accounts
from margin.services.audit import audit_record
from margin.services.ledger import Line, journal_post, wallet_accounts_ensure
from margin.services.notifications import notification_create
from margin.services.positions import closing_side, position_fill, slipped_price

CENT = Decimal("0.00000001")
# NUMERIC(20, 12) holds ratios below 10^8; a pool with next to no balance left has a ratio
# above any threshold anyway.
RATIO_CAP = Decimal("99999999")


def _stored_ratio(ratio: Decimal | None) -> Decimal | None:
    return None if ratio is None else min(ratio, RATIO_CAP).quantize(Decimal("1e-12"))


@dataclass
class _Context:
    liquidation: Liquidation
    account: MarginAccount
    tick: RevaluationTick
    settlement: Asset

    @property
    def params(self):
        return self.tick.parameter_version

    def quote(self) -> tuple[AccountQuote, dict[str, Position]]:
        engine_account = engine_accounts([self.account.pk])[self.account.pk]
        return quote_account(engine_account), _positions_by_engine_id(self.account)

    def step(self, **detail) -> None:
        self.liquidation.steps.append({k: str(v) for k, v in detail.items()})


def _positions_by_engine_id(account: MarginAccount) -> dict[str, Position]:
    """The account's open positions by their engine id: the primary key, as a string (see
    `PositionState.engine_id`)."""
    return {
        str(position.pk): position
        for position in account.positions.exclude(quantity=0).select_related("instrument")
    }


def _insurance_fund(asset: Asset) -> LedgerAccount:
    return LedgerAccount.objects.get(
        kind=LedgerAccountKind.INSURANCE, asset=asset, margin_account__isnull=True
    )


def _fund_transfer(ctx: _Context, *, amount: Decimal, to_fund: bool, kind: str, memo: str):
    """Move `amount` of the settlement asset between the account's wallet and the fund."""
    amount = amount.quantize(CENT)
    if amount <= 0:
        return None
    wallet = wallet_accounts_ensure(
        margin_account_id=ctx.account.pk, asset_ids=[ctx.settlement.pk]
    )[ctx.settlement.pk]
    fund = _insurance_fund(ctx.settlement)
    sign = Decimal(1) if to_fund else Decimal(-1)
    journal = journal_post(
        kind=kind,
        lines=[
            Line(wallet, ctx.settlement.pk, -sign * amount),
            Line(fund.pk, ctx.settlement.pk, sign * amount),
        ],
        margin_account_id=ctx.account.pk,
        memo=memo,
    )
    ctx.step(action=kind, amount=amount, journal=journal.pk if journal else None)
    return journal


def _reduce(
    ctx: _Context,
    position: Position,
    *,
    quantity: Decimal,
    price: Decimal,
    reason: str,
    against: int | None = None,
    fee: Decimal = Decimal(0),
):
    """Reduce one of the account's positions; `against` names the ADL counterparty's position
    (one booking per pair)."""
    reference = f"{reason}:{ctx.tick.pk}:{ctx.account.pk}:{position.pk}:{against or ''}"
    receipt = position_fill(
        account=ctx.account,
        instrument=position.instrument.symbol,
        side=closing_side(position.quantity),
        quantity=quantity,
        price=price,
        reason=reason,
        reference=reference,
        fee=fee,
    )
    ctx.step(
        action=reason,
        position=position.pk,
        quantity=quantity,
        price=price,
        fee=fee,
        journal=receipt.journal_id,
    )
    return receipt


def _liquidate_by_plan(ctx: _Context, engine_account) -> None:
    """The engine's partial plan, sized with the liquidation fee counted like slippage (both
    cost quantity × mark × rate), so the pool lands on the target ratio after paying it. A plan
    that cannot reach the target closes the pool whole and charges no fee: the pool has nothing
    left to pay it with."""
    slippage, fee_rate = ctx.params.liquidation_slippage, ctx.params.liquidation_fee_rate
    plan = liquidation_plan(
        engine_account,
        target_ratio=ctx.params.liquidation_target_ratio,
        slippage=slippage + fee_rate,
        settlement_asset=ctx.settlement.symbol,
    )
    charged = fee_rate if plan.reaches_target else Decimal(0)
    marks = {p.id: p.mark_price for p in engine_account.positions}
    positions = _positions_by_engine_id(ctx.account)
    for step in plan.steps:
        if step.quantity <= 0:
            continue
        position = positions[step.position_id]
        price = slipped_price(marks[step.position_id], position.quantity, slippage)
        fee = (step.quantity * price * charged).quantize(CENT)
        _reduce(ctx, position, quantity=step.quantity, price=price, reason="liquidation", fee=fee)
        ctx.liquidation.fee += fee


def _adl_candidates(ctx: _Context, position: Position) -> list[AdlCandidate]:
    opposite = Position.objects.filter(instrument=position.instrument).exclude(
        margin_account=ctx.account
    )
    opposite = (
        opposite.filter(quantity__lt=0)
        if position.quantity > 0
        else opposite.filter(quantity__gt=0)
    )
    rows = list(
        opposite.values_list("pk", "margin_account_id", "quantity", "entry_price", "leverage")
    )
    balances = dict(
        MarginSnapshot.objects.filter(
            tick=ctx.tick, account_id__in=[r[1] for r in rows]
        ).values_list("account_id", "margin_balance")
    )
    return [
        AdlCandidate(
            pk,
            account_id,
            1 if quantity > 0 else -1,
            abs(quantity),
            entry,
            leverage,
            balances.get(account_id, Decimal(0)),
        )
        for pk, account_id, quantity, entry, leverage in rows
    ]


def _auto_deleverage(ctx: _Context, quote: AccountQuote) -> None:
    """Close each cross position at its bankruptcy price against the ADL queue."""
    order = sorted(
        (row for row in quote.positions if row.margin_mode == "cross"),
        key=lambda row: -row.maintenance_margin,
    )
    for row in order:
        current, positions = ctx.quote()
        position = positions[row.id]
        live = next(r for r in current.positions if r.id == row.id)
        mark = position.instrument.mark.mark_price
        price = (live.bankruptcy_price or mark).quantize(CENT)
        remaining = abs(position.quantity)
        for candidate in adl_queue(_adl_candidates(ctx, position), mark=mark):
            if remaining <= 0:
                break
            quantity = min(remaining, candidate.quantity)
            counterparty = MarginAccount.objects.get(pk=candidate.account_id)
            receipt = position_fill(
                account=counterparty,
                instrument=position.instrument.symbol,
                side=closing_side(Decimal(candidate.side)),
                quantity=quantity,
                price=price,
                reason="adl",
                reference=f"adl:{ctx.tick.pk}:{ctx.account.pk}:{candidate.position_id}",
            )
            ctx.step(
                action="adl_counterparty",
                position=candidate.position_id,
                account=candidate.account_id,
                quantity=quantity,
                price=price,
                journal=receipt.journal_id,
            )
            _reduce(
                ctx,
                position,
                quantity=quantity,
                price=price,
                reason="adl",
                against=candidate.position_id,
            )
            position.refresh_from_db()
            remaining -= quantity
            notification_create(
                account=counterparty,
                kind=Notification.Kind.ADL,
                text=(
                    f"{quantity} {position.instrument.symbol} of your position was "
                    f"auto-deleveraged at {price:.2f} against a bankrupt account."
                ),
            )
        if remaining > 0:
            # No opposing profit left: the rest closes at the market like a liquidation.
            _reduce(
                ctx,
                position,
                quantity=remaining,
                price=slipped_price(mark, position.quantity, ctx.params.liquidation_slippage),
                reason="liquidation",
            )


def _cover_deficit(ctx: _Context) -> None:
    """What the pool owes after closing comes from the insurance fund, as far as it goes."""
    after, _ = ctx.quote()
    if after.margin_balance >= 0:
        return
    price = ctx.settlement.price.price
    deficit = (-after.margin_balance / price).quantize(CENT, rounding=ROUND_UP)
    fund = LedgerAccount.objects.select_for_update().get(pk=_insurance_fund(ctx.settlement).pk)
    cover = min(deficit, max(fund.balance, Decimal(0)))
    if _fund_transfer(
        ctx,
        amount=cover,
        to_fund=False,
        kind=JournalKind.INSURANCE,
        memo=f"insurance fund covers the deficit, tick {ctx.tick.pk}",
    ):
        ctx.liquidation.insurance_cover = cover.quantize(CENT)


def _stale_prices_of(
    engine_account, positions: dict[str, Position], *, tick: RevaluationTick, max_age_s: int
) -> set[str]:
    """The account's symbols (instruments, underlyings, holdings) whose price was not fit to
    liquidate on (stale or uncertain) at the tick or is not now. A position's engine id is its
    primary key: its instrument's symbol comes from `positions` (see `_positions_by_engine_id`)."""
    mine = {line.asset for line in engine_account.collateral} | {
        symbol
        for p in engine_account.positions
        for symbol in (positions[p.id].instrument.symbol, p.risk_asset)
    }
    now_unfit = unfit_prices(now=timezone.now(), max_age_s=max_age_s)
    return mine & (tick.unfit_symbols | set(now_unfit))


def _isolated_due(quote: AccountQuote, threshold: Decimal):
    return [
        row
        for row in quote.positions
        if row.margin_mode == "isolated"
        and (row.isolated_margin_ratio is None or row.isolated_margin_ratio >= threshold)
    ]


def _cross_due(quote: AccountQuote, threshold: Decimal) -> bool:
    cross = [row for row in quote.positions if row.margin_mode == "cross"]
    if not cross:
        return False
    return quote.margin_ratio is None or quote.margin_ratio >= threshold


@transaction.atomic
def liquidation_run(*, account_id: int, tick_id: int) -> Liquidation:
    """Liquidate the account as the tick found it due, once."""
    liquidation, _ = Liquidation.objects.get_or_create(account_id=account_id, tick_id=tick_id)
    liquidation = Liquidation.objects.select_for_update().get(pk=liquidation.pk)
    if liquidation.status != Liquidation.Status.PENDING:
        return liquidation
    account = MarginAccount.objects.select_for_update().get(pk=account_id)
    tick = RevaluationTick.objects.select_related("parameter_version").get(pk=tick_id)
    settlement = Asset.objects.select_related("price").get(is_settlement=True)
    ctx = _Context(liquidation=liquidation, account=account, tick=tick, settlement=settlement)
    params = ctx.params
    engine_account = engine_accounts([account_id])[account_id]
    positions = _positions_by_engine_id(account)
    stale = _stale_prices_of(
        engine_account, positions, tick=tick, max_age_s=params.price_guard_max_age_s
    )
    quote = quote_account(engine_account)
    liquidation.margin_ratio_before = _stored_ratio(quote.margin_ratio)
    threshold = params.liquidation_ratio
    isolated = _isolated_due(quote, threshold)
    cross = _cross_due(quote, threshold)
    if stale or not (cross or isolated):
        liquidation.status = Liquidation.Status.NOT_NEEDED
        ctx.step(
            action="skipped",
            reason=f"prices not fit to liquidate on: {', '.join(sorted(stale))}"
            if stale
            else "no longer due",
        )
        liquidation.completed_at = timezone.now()
        liquidation.save()
        return liquidation

    for row in isolated:
        position = positions[row.id]
        price = slipped_price(
            position.instrument.mark.mark_price, position.quantity, params.liquidation_slippage
        )
        _reduce(ctx, position, quantity=abs(position.quantity), price=price, reason="liquidation")
    if cross:
        fund = _insurance_fund(settlement)
        plan_cost = liquidation_plan(
            engine_account,
            target_ratio=params.liquidation_target_ratio,
            slippage=params.liquidation_slippage,
            settlement_asset=settlement.symbol,
        ).insurance_fund_cost
        bankrupt = quote.margin_balance <= 0
        if bankrupt and plan_cost > fund.balance * settlement.price.price:
            _auto_deleverage(ctx, quote)
            liquidation.adl_cover = plan_cost
        else:
            _liquidate_by_plan(ctx, engine_account)
    _cover_deficit(ctx)

    after, _ = ctx.quote()
    liquidation.margin_ratio_after = _stored_ratio(after.margin_ratio)
    liquidation.status = Liquidation.Status.DONE
    liquidation.completed_at = timezone.now()
    liquidation.save()
    detail = {
        "liquidation": liquidation.pk,
        "fee": str(liquidation.fee),
        "insurance_cover": str(liquidation.insurance_cover),
        "steps": len(liquidation.steps),
    }
    AccountEvent.objects.create(
        account=account,
        tick=tick,
        kind=AccountEvent.Kind.LIQUIDATION,
        margin_ratio=liquidation.margin_ratio_before,
        detail=detail,
    )
    audit_record(
        action="account.liquidation",
        margin_account=account,
        subject=f"tick:{tick.pk}",
        before={"margin_ratio": str(quote.margin_ratio)},
        after={"margin_ratio": str(after.margin_ratio), **detail},
        reason="revaluation",
    )
    notification_create(
        account=account,
        kind=Notification.Kind.LIQUIDATION,
        text=(
            f"Account #{account.pk} was liquidated: margin ratio {quote.margin_ratio} → "
            f"{after.margin_ratio}, liquidation fee {liquidation.fee} {settlement.symbol}."
        ),
    )
    return liquidation


@transaction.atomic
def insurance_fund_deposit(*, amount: Decimal, memo: str, actor=None):
    """Pay `amount` of the settlement asset into the insurance fund from the outside world."""
    settlement = Asset.objects.get(is_settlement=True)
    fund = _insurance_fund(settlement)
    external = LedgerAccount.objects.get(
        kind=LedgerAccountKind.EXTERNAL, asset=settlement, margin_account__isnull=True
    )
    return journal_post(
        kind=JournalKind.INSURANCE,
        lines=[
            Line(external.pk, settlement.pk, -amount),
            Line(fund.pk, settlement.pk, amount),
        ],
        created_by_id=actor.pk if actor else None,
        memo=memo,
    )

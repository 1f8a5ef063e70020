"""Liquidation of an account through the ledger services, following the venues' rules.

One liquidation per account and tick (a Liquidation row unique on both, inserted first and
locked): a redelivered task finds it done and books nothing. In order:
- prices: a price not fit to liquidate on (stale) holds the liquidation back only when it is
  material (`unfit_prices`); then a `stale_blocked` event and a desk alert are recorded;
- isolated positions past their own line close whole at the slipped mark; the clearance fee
  and what is left of the isolated margin go to the insurance fund (Binance, Bybit);
- the cross pool: the engine's plan under the account's scheme
  (`margin.engine.book_liquidation`, through `margin.selectors.liquidation`, the plan the
  desk's review previews): a linear account's position in a high risk tier cut to the top of
  the lower tier when that brings the pool back under the line (Bybit's process), else the
  hedge-aware partial plan, its cost counting slippage and the clearance fee, down to the
  target ratio or, failing that, just back under the liquidation line (after hysteresis); an
  account holding options in Deribit's order: under the standard scheme futures first and
  options after (options first when their delta is larger than and opposite to the
  futures'), under the portfolio scheme the instrument contributing most to the requirement
  first, then a delta hedge through the perpetual; options close at their mark, the fee
  (capped by the margin left) to the fund. When no partial step can, the pool is taken over:
  every linear position closes, the fee (capped by the margin left) and any remainder go to
  the fund;
- a deficit: the fund pays it if its balance can (never more: the fund stays ≥ 0); otherwise
  positions close at their bankruptcy price against opposing profitable positions ranked by
  profit × effective leverage (ADL); what is still owed after that is written off in an
  audited journal against the market account with a desk alert, never left as a silent
  negative wallet.
Each action is an `AccountEvent` (liquidation, insurance, adl, write_off, stale_blocked) with
the figures of the scenario contract in its detail.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from margin.engine.adl import AdlCandidate, adl_queue
from margin.engine.book_liquidation import HEDGE, OPTION, CrossPlan
from margin.engine.fills import closing_side, slipped_price
from margin.engine.reference import AccountQuote, quote_account
from margin.engine.scheme import Requirement
from margin.engine.types import AccountInput
from margin.models import (
    AccountEvent,
    Asset,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarginAccount,
    MarkPrice,
    Notification,
    Position,
    RevaluationTick,
)
from margin.selectors.accounts import account_state_load, engine_accounts
from margin.selectors.liquidation import (
    UnfitPrices,
    account_unfit_prices,
    cross_liquidation_plan,
    stale_prices_now,
)
from margin.selectors.market import snapshots_as_of
from margin.services.audit import audit_record
from margin.services.desk import case_open_for_system
from margin.services.ledger import (
    QUANTUM,
    Line,
    house_balance,
    house_rows_last,
    house_rows_lock,
    journal_post,
    wallet_accounts_ensure,
)
from margin.services.notifications import notification_create
from margin.services.positions import position_fill
from margin.services.writes import as_text

CENT = Decimal("0.00000001")
# NUMERIC(20, 12) holds ratios below 10^8; a pool with next to no balance left has a ratio
# above any threshold anyway.
RATIO_CAP = Decimal("99999999")
ZERO = Decimal(0)


def _stored_ratio(ratio: Decimal | None) -> Decimal | None:
    return None if ratio is None else min(ratio, RATIO_CAP).quantize(Decimal("1e-12"))


@dataclass
class _Context:
    liquidation: Liquidation
    account: MarginAccount
    tick: RevaluationTick
    settlement: Asset
    fills: int = 0
    events: list[AccountEvent] = field(default_factory=list)

    @property
    def params(self):
        return self.tick.parameter_version

    def quote(self) -> tuple[AccountQuote, dict[str, Position]]:
        engine_account = engine_accounts([self.account.pk])[self.account.pk]
        return quote_account(engine_account), _positions_by_engine_id(self.account)

    def step(self, **detail) -> None:
        self.liquidation.steps.append({k: str(v) for k, v in detail.items()})

    def event(self, kind: str, **detail) -> None:
        """One thing done to the account, in the contract's words (numbers as text)."""
        self.events.append(
            AccountEvent(
                account=self.account,
                tick=self.tick,
                kind=kind,
                detail={k: as_text(v) if isinstance(v, Decimal) else v for k, v in detail.items()},
            )
        )

    def reference(self, reason: str, position: Position, against: int | None = None) -> str:
        self.fills += 1
        return (
            f"{reason}:{self.tick.pk}:{self.account.pk}:{position.pk}:{against or ''}:{self.fills}"
        )


def _positions_by_engine_id(account: MarginAccount) -> dict[str, Position]:
    """The account's open positions by their engine id: the primary key, as a string (see
    `PositionState.engine_id`)."""
    return {
        str(position.pk): position
        for position in account.positions.exclude(quantity=0).select_related("instrument")
    }


def _insurance_fund(asset: Asset, *, lock: bool = False) -> LedgerAccount:
    """The fund's row with its balance as this liquidation leaves it (`house_balance`); `lock`
    for a cover it must still allow at commit: the fund's row with the market account's, which
    a write-off moves next (`house_rows_lock`)."""
    fund = LedgerAccount.objects.get(
        kind=LedgerAccountKind.INSURANCE, asset=asset, margin_account__isnull=True
    )
    if lock:
        house_rows_lock([fund.pk, _house(LedgerAccountKind.MARKET, asset)])
    fund.balance = house_balance(fund.pk)
    return fund


def _fund_available(ctx: _Context) -> Decimal:
    """What the insurance fund can pay, in USD: its balance, never less than 0."""
    fund = _insurance_fund(ctx.settlement)
    return max(fund.balance, ZERO) * ctx.settlement.price.price


def _house(kind: str, asset: Asset) -> int:
    return LedgerAccount.objects.values_list("pk", flat=True).get(
        kind=kind, asset=asset, margin_account__isnull=True
    )


def _wallet(ctx: _Context) -> int:
    return wallet_accounts_ensure(margin_account_id=ctx.account.pk, asset_ids=[ctx.settlement.pk])[
        ctx.settlement.pk
    ]


def _post(ctx: _Context, *, kind: str, debit: int, credit: int, amount: Decimal, memo: str):
    """Move `amount` of the settlement asset from ledger account `debit` to `credit` (to the
    ledger's quantum, rounded down: never more than was there)."""
    amount = amount.quantize(QUANTUM, rounding=ROUND_DOWN)
    if amount <= 0:
        return None
    journal = journal_post(
        kind=kind,
        lines=[
            Line(debit, ctx.settlement.pk, -amount),
            Line(credit, ctx.settlement.pk, amount),
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
    fee: Decimal = ZERO,
):
    """Reduce one of the account's positions; `against` names the ADL counterparty's position."""
    receipt = position_fill(
        account=ctx.account,
        instrument=position.instrument.symbol,
        side=closing_side(position.quantity),
        quantity=quantity,
        price=price,
        reason=reason,
        reference=ctx.reference(reason, position, against),
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
    position.refresh_from_db()
    return receipt


def _liquidation_fill(
    ctx: _Context,
    position: Position,
    *,
    quantity: Decimal,
    price: Decimal,
    partial: bool,
    margin_mode: str,
    fee: Decimal = ZERO,
    **detail,
) -> None:
    """One liquidation fill: the reduction, then what it books on the liquidation."""
    _reduce(ctx, position, quantity=quantity, price=price, reason="liquidation", fee=fee)
    _liquidation_booked(
        ctx,
        symbol=position.instrument.symbol,
        quantity=quantity,
        price=price,
        fee=fee,
        partial=partial,
        margin_mode=margin_mode,
        **detail,
    )


def _liquidation_booked(ctx: _Context, *, symbol: str, fee: Decimal, **detail) -> None:
    """A liquidation fill's fee counted on the liquidation, and the event the account's
    history and the scenario timeline show."""
    ctx.liquidation.fee += fee
    ctx.event(AccountEvent.Kind.LIQUIDATION, symbol=symbol, fee=fee, **detail)


# Prices not fit to liquidate on.


def _haircut_stale_holdings(
    engine_account: AccountInput, assets: frozenset[str], haircut: Decimal
) -> AccountInput:
    """An immaterial stale holding counts at its last price less the haircut."""
    from dataclasses import replace

    return replace(
        engine_account,
        collateral=tuple(
            replace(line, price=line.price * (1 - haircut)) if line.asset in assets else line
            for line in engine_account.collateral
        ),
    )


def _desk_alert(ctx: _Context, *, what: str, detail: dict) -> None:
    """The desk sees it in the audit trail (action `desk.alert.*`) and the account's events."""
    audit_record(
        action=f"desk.alert.{what}",
        margin_account=ctx.account,
        subject=f"tick:{ctx.tick.pk}",
        after=detail,
        reason="liquidation",
    )


# Insurance fund, ADL, write-off.


def _adl_candidates(ctx: _Context, position: Position) -> list[AdlCandidate]:
    """Opposing positions in other accounts. A cross one is ranked on its account's margin
    balance at the tick; an isolated one on its own margin (isolated margin + uPnL)."""
    opposite = Position.objects.filter(instrument=position.instrument).exclude(
        margin_account=ctx.account
    )
    opposite = (
        opposite.filter(quantity__lt=0)
        if position.quantity > 0
        else opposite.filter(quantity__gt=0)
    )
    rows = list(
        opposite.values_list(
            "pk", "margin_account_id", "quantity", "entry_price", "leverage", "margin_mode"
        )
    )
    balances = dict(
        snapshots_as_of(ctx.tick)
        .filter(account_id__in=[r[1] for r in rows])
        .values_list("account_id", "margin_balance")
    )
    isolated = dict(
        LedgerAccount.objects.filter(
            kind=LedgerAccountKind.ISOLATED, position_id__in=[r[0] for r in rows]
        ).values_list("position_id", "balance")
    )
    mark = position.instrument.mark.mark_price
    candidates = []
    for pk, account_id, quantity, entry, leverage, mode in rows:
        if mode == "isolated":
            margin = isolated.get(pk, ZERO) + quantity * (mark - entry)
        else:
            margin = balances.get(account_id, ZERO)
        candidates.append(
            AdlCandidate(
                pk, account_id, 1 if quantity > 0 else -1, abs(quantity), entry, leverage, margin
            )
        )
    return candidates


def adl_fill_price(bankruptcy_price: Decimal, candidate: AdlCandidate) -> Decimal:
    """The price a counterparty is deleveraged at: the bankrupt position's bankruptcy price,
    but never worse for the counterparty than its own entry. ADL hands over a profitable
    position's unrealized profit (that is what it is ranked on), never more: in a cross pool
    whose whole deficit sits on one position the bankruptcy price can lie past the
    counterparty's entry, and filling there would book it a realized loss, possibly a negative
    wallet nobody audited. What the clamp leaves unpaid stays with the bankrupt account, for
    the fund and then a write-off."""
    if candidate.side < 0:  # a short counterparty buys back: no higher than its entry
        return min(bankruptcy_price, candidate.entry_price)
    return max(bankruptcy_price, candidate.entry_price)


def _auto_deleverage(ctx: _Context, position: Position, price: Decimal) -> Decimal:
    """Close as much of `position` as the ADL queue takes at `price` (its bankruptcy price,
    clamped per counterparty by `adl_fill_price`); the quantity left that nobody opposite
    could take. An isolated position's shortfall from the clamp is covered into its margin
    (fund, then write-off) before it trades, so its closing fill never draws on the fund."""
    remaining = abs(position.quantity)
    mark = position.instrument.mark.mark_price
    taken = []
    for candidate in adl_queue(_adl_candidates(ctx, position), mark=mark):
        if remaining <= 0:
            break
        taken.append((candidate, min(remaining, candidate.quantity)))
        remaining -= taken[-1][1]
    # The counterparties' rows before the fund's (a shortfall's `_cover` locks the house rows):
    # the lock order takes accounts first.
    list(
        MarginAccount.objects.filter(pk__in=[candidate.account_id for candidate, _ in taken])
        .order_by("pk")
        .select_for_update(no_key=True)
        .only("pk")
    )
    for candidate, quantity in taken:
        fill = adl_fill_price(price, candidate)
        shortfall = quantity * abs(fill - price)
        if shortfall and position.margin_mode == "isolated":
            isolated_id, _ = _isolated_margin(position)
            _cover(
                ctx,
                ledger_account=isolated_id,
                deficit=shortfall * ctx.settlement.price.price,
                where=f"isolated {position.instrument.symbol}: ADL past the counterparty's entry",
            )
        counterparty = MarginAccount.objects.get(pk=candidate.account_id)
        receipt = position_fill(
            account=counterparty,
            instrument=position.instrument.symbol,
            side=closing_side(Decimal(candidate.side)),
            quantity=quantity,
            price=fill,
            reason="adl",
            reference=f"adl:{ctx.tick.pk}:{ctx.account.pk}:{candidate.position_id}",
        )
        ctx.step(
            action="adl_counterparty",
            position=candidate.position_id,
            account=candidate.account_id,
            quantity=quantity,
            price=fill,
            journal=receipt.journal_id,
        )
        _reduce(
            ctx,
            position,
            quantity=quantity,
            price=fill,
            reason="adl",
            against=candidate.position_id,
        )
        ctx.event(
            AccountEvent.Kind.ADL,
            counterparty=candidate.account_id,
            symbol=position.instrument.symbol,
            quantity=quantity,
            price=fill,
        )
        notification_create(
            account=counterparty,
            kind=Notification.Kind.ADL,
            text=(
                f"{quantity} {position.instrument.symbol} of your position was "
                f"auto-deleveraged at {fill:.2f} against a bankrupt account."
            ),
        )
    return remaining


def _write_off(ctx: _Context, *, ledger_account: int, amount: Decimal, where: str) -> None:
    """What nobody could cover is written off: the market account (the exchange's side of
    every trade) pays it in, in an audited journal, and the desk is alerted."""
    amount = amount.quantize(QUANTUM, rounding=ROUND_UP)
    journal = _post(
        ctx,
        kind=JournalKind.WRITE_OFF,
        debit=_house(LedgerAccountKind.MARKET, ctx.settlement),
        credit=ledger_account,
        amount=amount,
        memo=f"loss written off ({where}), tick {ctx.tick.pk}: fund and ADL exhausted",
    )
    if journal is None:
        return
    ctx.event(AccountEvent.Kind.WRITE_OFF, amount=amount, journal=journal.pk, where=where)
    _desk_alert(ctx, what="write_off", detail={"amount": str(amount), "journal": journal.pk})


def _cover(ctx: _Context, *, ledger_account: int, deficit: Decimal, where: str) -> None:
    """A deficit in USD: the fund pays what its balance allows, the rest is written off."""
    if deficit <= 0:
        return
    price = ctx.settlement.price.price
    owed = (deficit / price).quantize(QUANTUM, rounding=ROUND_UP)
    fund = _insurance_fund(ctx.settlement, lock=True)
    cover = min(owed, max(fund.balance, ZERO))
    if _post(
        ctx,
        kind=JournalKind.INSURANCE,
        debit=fund.pk,
        credit=ledger_account,
        amount=cover,
        memo=f"insurance fund covers the deficit ({where}), tick {ctx.tick.pk}",
    ):
        ctx.liquidation.insurance_cover += cover
        ctx.event(AccountEvent.Kind.INSURANCE, amount=cover, where=where)
    if owed - cover > 0:
        _write_off(ctx, ledger_account=ledger_account, amount=owed - cover, where=where)


def _sweep_holdings(ctx: _Context) -> None:
    """A bankrupt pool's other holdings (BTC, SOL...) go to the insurance fund in kind before
    it covers the settlement asset: the fund pays for the loss, so it takes what was left."""
    holdings = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.WALLET, margin_account=ctx.account, balance__gt=0
    ).exclude(asset=ctx.settlement)
    for wallet in holdings.select_related("asset").order_by("pk"):
        fund = _insurance_fund(wallet.asset)
        journal = journal_post(
            kind=JournalKind.INSURANCE,
            lines=[
                Line(wallet.pk, wallet.asset_id, -wallet.balance),
                Line(fund.pk, wallet.asset_id, wallet.balance),
            ],
            margin_account_id=ctx.account.pk,
            memo=f"bankrupt pool: {wallet.asset.symbol} holding to the insurance fund",
        )
        ctx.step(
            action="sweep", asset=wallet.asset.symbol, amount=wallet.balance, journal=journal.pk
        )
        ctx.event(
            AccountEvent.Kind.INSURANCE,
            amount=ZERO,
            received={wallet.asset.symbol: as_text(wallet.balance)},
            where="bankrupt pool holdings",
        )


def _to_fund(ctx: _Context, *, ledger_account: int, amount: Decimal, memo: str) -> Decimal:
    fund = _insurance_fund(ctx.settlement)
    journal = _post(
        ctx,
        kind=JournalKind.LIQUIDATION_FEE,
        debit=ledger_account,
        credit=fund.pk,
        amount=amount,
        memo=memo,
    )
    return amount.quantize(QUANTUM, rounding=ROUND_DOWN) if journal else ZERO


# Isolated positions.


def _isolated_margin(position: Position) -> tuple[int, Decimal]:
    row = LedgerAccount.objects.get(kind=LedgerAccountKind.ISOLATED, position=position)
    return row.pk, row.balance


def _liquidate_isolated(ctx: _Context, position: Position, bankruptcy_price) -> None:
    """Close the position whole at the slipped mark. Margin left: the clearance fee (capped
    by it) and the rest to the fund. A deficit: the fund if it can; else ADL at the bankruptcy
    price, then the fund, then a write-off."""
    params = ctx.params
    mark = position.instrument.mark.mark_price
    quantity = abs(position.quantity)
    price = slipped_price(mark, position.quantity, params.liquidation_slippage)
    side = 1 if position.quantity > 0 else -1
    symbol = position.instrument.symbol
    isolated_id, margin = _isolated_margin(position)
    left = margin + side * quantity * (price - position.entry_price)
    if left >= 0:
        fee = min(quantity * price * params.liquidation_fee_rate, left).quantize(
            CENT, rounding=ROUND_DOWN
        )
        _reduce(ctx, position, quantity=quantity, price=price, reason="liquidation", fee=fee)
        remainder = _to_fund(
            ctx,
            ledger_account=_wallet(ctx),
            amount=left - fee,
            memo=f"remaining isolated margin of {symbol} to the insurance fund",
        )
        ctx.liquidation.fee += fee
        ctx.event(
            AccountEvent.Kind.LIQUIDATION,
            symbol=symbol,
            quantity=quantity,
            price=price,
            fee=fee,
            remainder=remainder,
            partial=False,
            margin_mode="isolated",
        )
        return
    deficit = -left
    if deficit > _fund_available(ctx) and bankruptcy_price:
        # Rounded in the account's favour, so the closed isolated margin is never left below
        # 0 (the fill would have the fund pay that dust unconditionally).
        rounding = ROUND_CEILING if side > 0 else ROUND_FLOOR
        left_over = _auto_deleverage(
            ctx, position, bankruptcy_price.quantize(CENT, rounding=rounding)
        )
        if left_over <= 0:
            return
        quantity = left_over
        isolated_id, margin = _isolated_margin(position)
        deficit = -(margin + side * quantity * (price - position.entry_price))
    # The fill hands the fund's cover to the isolated margin as it closes (positions.py);
    # what the fund cannot pay is written off into the isolated margin before the fill.
    available = _fund_available(ctx)
    if deficit > available:
        _write_off(
            ctx, ledger_account=isolated_id, amount=deficit - available, where=f"isolated {symbol}"
        )
    cover = min(deficit, available)
    _liquidation_fill(
        ctx, position, quantity=quantity, price=price, partial=False, margin_mode="isolated"
    )
    if cover > 0:
        ctx.liquidation.insurance_cover += cover
        ctx.event(
            AccountEvent.Kind.INSURANCE, amount=cover.quantize(CENT), where=f"isolated {symbol}"
        )


# The cross pool.


def _cross_plan(ctx: _Context, engine_account: AccountInput, frozen: frozenset[str]) -> CrossPlan:
    """The engine's plan of the pool under the account's scheme, as the desk previews it."""
    state = account_state_load(ctx.account)
    return cross_liquidation_plan(
        state,
        engine_account,
        version=ctx.params,
        requirement=state.requirement(),
        frozen=frozen,
    )


def _liquidate_partially(ctx: _Context, plan: CrossPlan) -> None:
    """Each step of the plan, in its order. A linear leg fills at the slipped mark, the
    clearance fee on top; an option at its mark (the premium through the ledger as any option
    fill, `position_fill`), its fee capped by the margin balance left (closing at the mark
    moves none of it); a hedge opens or adds to the perpetual at the slipped mark. Every fee
    goes to the insurance fund."""
    fee_rate, slippage = ctx.params.liquidation_fee_rate, ctx.params.liquidation_slippage
    for step in plan.steps:
        if step.quantity <= 0:
            continue
        positions = _positions_by_engine_id(ctx.account)
        if step.kind == HEDGE:
            _hedge(ctx, step.position_id, side=step.side, quantity=step.quantity)
            continue
        position = positions[step.position_id]
        mark = position.instrument.mark.mark_price
        if step.kind == OPTION:
            room = max(ctx.quote()[0].margin_balance, ZERO)
            price = mark
            fee = min(step.quantity * price * fee_rate, room)
        else:
            price = slipped_price(mark, position.quantity, slippage)
            fee = step.quantity * price * fee_rate
        _liquidation_fill(
            ctx,
            position,
            quantity=step.quantity,
            price=price,
            fee=fee.quantize(CENT, rounding=ROUND_DOWN),
            partial=step.remaining_quantity > 0,
            margin_mode="cross",
            **({"option": True} if step.kind == OPTION else {}),
        )


def _hedge(ctx: _Context, engine_id: str, *, side: int, quantity: Decimal) -> None:
    """Deribit's last resort for a portfolio-margin account: the perpetual bought or sold
    against the net delta at the mark moved against the account, the clearance fee to the
    fund. `engine_id` is the account's leg on it, or the symbol of a leg it opens."""
    held = _positions_by_engine_id(ctx.account).get(engine_id)
    symbol = held.instrument.symbol if held is not None else engine_id
    mark = MarkPrice.objects.get(instrument__symbol=symbol).mark_price
    price = slipped_price(mark, Decimal(-side), ctx.params.liquidation_slippage)
    fee = (quantity * price * ctx.params.liquidation_fee_rate).quantize(CENT, rounding=ROUND_DOWN)
    ctx.fills += 1
    receipt = position_fill(
        account=ctx.account,
        instrument=symbol,
        side="buy" if side > 0 else "sell",
        quantity=quantity,
        price=price,
        reason="liquidation",
        reference=f"hedge:{ctx.tick.pk}:{ctx.account.pk}:{symbol}:{ctx.fills}",
        fee=fee,
    )
    ctx.step(
        action="hedge", symbol=symbol, quantity=quantity, price=price, journal=receipt.journal_id
    )
    _liquidation_booked(
        ctx,
        symbol=symbol,
        quantity=quantity,
        price=price,
        fee=fee,
        partial=True,
        margin_mode="cross",
        hedge="buy" if side > 0 else "sell",
    )


def _take_over(ctx: _Context, quote: AccountQuote, frozen: frozenset[str]) -> None:
    """No partial step can: every cross position (but those on a stale price) closes. With
    margin left after slippage, it pays the clearance fee (capped by it) and the rest goes
    to the fund too, as when the venue takes the position over at its bankruptcy price. With a
    deficit the fund can pay, it pays; one it cannot is auto-deleveraged at the bankruptcy
    prices."""
    params = ctx.params
    positions = _positions_by_engine_id(ctx.account)
    rows = [
        row
        for row in quote.positions
        if row.margin_mode == "cross" and row.id not in frozen and row.id in positions
    ]
    slip = params.liquidation_slippage
    prices = {
        row.id: slipped_price(
            positions[row.id].instrument.mark.mark_price, positions[row.id].quantity, slip
        )
        for row in rows
    }
    cost = sum(
        (
            abs(positions[r.id].quantity)
            * abs(positions[r.id].instrument.mark.mark_price - prices[r.id])
            for r in rows
        ),
        ZERO,
    )
    left = quote.margin_balance - cost
    if left < 0 and -left > _fund_available(ctx):
        for row in sorted(rows, key=lambda r: -r.maintenance_margin):
            current, live = ctx.quote()
            position = live.get(row.id)
            if position is None:
                continue
            now_row = next(r for r in current.positions if r.id == row.id)
            bankruptcy = now_row.bankruptcy_price or position.instrument.mark.mark_price
            unmatched = _auto_deleverage(ctx, position, bankruptcy.quantize(CENT))
            if unmatched > 0:
                _liquidation_fill(
                    ctx,
                    position,
                    quantity=unmatched,
                    price=prices[row.id],
                    partial=False,
                    margin_mode="cross",
                )
        return
    fee_room = max(left, ZERO)
    for row in sorted(rows, key=lambda r: -r.maintenance_margin):
        position = positions[row.id]
        quantity = abs(position.quantity)
        fee = min(quantity * prices[row.id] * params.liquidation_fee_rate, fee_room).quantize(
            CENT, rounding=ROUND_DOWN
        )
        fee_room -= fee
        _liquidation_fill(
            ctx,
            position,
            quantity=quantity,
            price=prices[row.id],
            fee=fee,
            partial=False,
            margin_mode="cross",
        )
    after, _ = ctx.quote()
    if after.margin_balance > 0:
        wallet = _wallet(ctx)
        cash = LedgerAccount.objects.get(pk=wallet).balance
        remainder = _to_fund(
            ctx,
            ledger_account=wallet,
            amount=min(after.margin_balance / ctx.settlement.price.price, max(cash, ZERO)),
            memo="taken over: the margin left after the clearance fee to the insurance fund",
        )
        if remainder and ctx.events:
            # The last close of the takeover carries what the fund received beyond the fee.
            ctx.events[-1].detail["remainder"] = as_text(remainder)


def _cross_due(quote: AccountQuote, requirement: Requirement, threshold: Decimal) -> bool:
    """The cross pool is due when its ratio under the account's margin scheme (requirement ÷
    margin balance) reaches the threshold; options are held in the cross pool."""
    cross = [row for row in quote.positions if row.margin_mode == "cross"]
    if not (cross or quote.options):
        return False
    return requirement.margin_ratio is None or requirement.margin_ratio >= threshold


def _isolated_due(quote: AccountQuote, threshold: Decimal):
    return [
        row
        for row in quote.positions
        if row.margin_mode == "isolated"
        and (row.isolated_margin_ratio is None or row.isolated_margin_ratio >= threshold)
    ]


def _cross_now(ctx: _Context, unfit: UnfitPrices) -> tuple[AccountInput, AccountQuote, Requirement]:
    """The account as it stands after a first step: its engine input (stale holdings haircut
    as before), quote and requirement."""
    engine_account = engine_accounts([ctx.account.pk])[ctx.account.pk]
    if unfit.assets:
        engine_account = _haircut_stale_holdings(
            engine_account, unfit.assets, ctx.params.stale_price_haircut
        )
    return (
        engine_account,
        quote_account(engine_account),
        account_state_load(ctx.account).requirement(),
    )


def _hold(ctx: _Context, unfit: UnfitPrices, quote: AccountQuote) -> Liquidation:
    """A material stale price: nothing is traded; the desk is told, every tick it lasts: an
    alert in the audit trail and the account's case (opened by the system unless one is
    open), which the queue and the case list show."""
    liquidation = ctx.liquidation
    for price in unfit.prices:
        ctx.event(
            AccountEvent.Kind.STALE_BLOCKED,
            symbol=price.symbol,
            age_s=price.age_s if price.age_s is not None else "unknown",
            value=price.value.quantize(CENT),
        )
    case, _ = case_open_for_system(
        account=ctx.account,
        summary=(
            "Liquidation held back by a stale price: "
            + ", ".join(f"{p.symbol} ({p.age_s} s)" for p in unfit.prices)
            + f"; margin ratio {quote.margin_ratio}"
        ),
    )
    _desk_alert(
        ctx,
        what="stale_blocked",
        detail={
            "prices": {p.symbol: str(p.age_s) for p in unfit.prices},
            "margin_ratio": str(quote.margin_ratio),
            "case": case.pk,
        },
    )
    ctx.step(action="held", reason=", ".join(p.symbol for p in unfit.prices))
    liquidation.status = Liquidation.Status.HELD
    liquidation.completed_at = timezone.now()
    liquidation.save()
    AccountEvent.objects.bulk_create(ctx.events)
    return liquidation


def liquidation_run(*, account_id: int, tick_id: int, now: datetime | None = None) -> Liquidation:
    """Liquidate the account as the tick found it due, once. `now` is the market time (the
    scenario runner's; the clock otherwise). One transaction; the house balances of all its
    journals move at its end (`house_rows_last`), so the auto-deleveraging counterparties'
    rows are locked while it holds no house row."""
    with transaction.atomic(), house_rows_last():
        return _liquidate(account_id=account_id, tick_id=tick_id, now=now or timezone.now())


def _liquidate(*, account_id: int, tick_id: int, now: datetime) -> Liquidation:
    liquidation, _ = Liquidation.objects.get_or_create(account_id=account_id, tick_id=tick_id)
    liquidation = Liquidation.objects.select_for_update().get(pk=liquidation.pk)
    if liquidation.status != Liquidation.Status.PENDING:
        return liquidation
    # NO KEY: FOR UPDATE would also wait for the foreign-key checks of rows other transactions
    # wrote about the account (a tick's events), which run at their commit.
    account = MarginAccount.objects.select_for_update(no_key=True).get(pk=account_id)
    tick = RevaluationTick.objects.select_related("parameter_version").get(pk=tick_id)
    settlement = Asset.objects.select_related("price").get(is_settlement=True)
    ctx = _Context(liquidation=liquidation, account=account, tick=tick, settlement=settlement)
    params = ctx.params
    engine_account = engine_accounts([account_id])[account_id]
    positions = _positions_by_engine_id(account)
    quote = quote_account(engine_account)
    requirement = account_state_load(account).requirement()
    liquidation.margin_ratio_before = _stored_ratio(requirement.margin_ratio)
    unfit = account_unfit_prices(
        engine_account,
        {engine_id: position.instrument.symbol for engine_id, position in positions.items()},
        quote=quote,
        stale=stale_prices_now(tick=tick, now=now, max_age_s=params.price_guard_max_age_s),
        now=now,
        share=params.stale_materiality_share,
    )
    if unfit.assets:
        engine_account = _haircut_stale_holdings(
            engine_account, unfit.assets, params.stale_price_haircut
        )
        quote = quote_account(engine_account)
    threshold = params.liquidation_ratio
    isolated = [row for row in _isolated_due(quote, threshold) if row.id not in unfit.positions]
    cross = _cross_due(quote, requirement, threshold)
    if not (cross or isolated):
        liquidation.status = Liquidation.Status.NOT_NEEDED
        ctx.step(action="skipped", reason="no longer due")
        liquidation.completed_at = timezone.now()
        liquidation.save()
        return liquidation
    if unfit.material:
        return _hold(ctx, unfit, quote)

    for row in isolated:
        _liquidate_isolated(ctx, positions[row.id], row.bankruptcy_price)
    if cross:
        plan = _cross_plan(ctx, engine_account, unfit.positions)
        _liquidate_partially(ctx, plan)
        pool = quote
        if plan.steps:
            engine_account, pool, requirement = _cross_now(ctx, unfit)
        line = params.liquidation_ratio - params.hysteresis
        linear = [
            row
            for row in pool.positions
            if row.margin_mode == "cross" and row.id not in unfit.positions
        ]
        past = requirement.margin_ratio is None or requirement.margin_ratio > line
        if not plan.reaches_target and linear and (past or not plan.steps):
            _take_over(ctx, pool, unfit.positions)
    after, _ = ctx.quote()
    if after.margin_balance < 0:
        _sweep_holdings(ctx)
        after, _ = ctx.quote()
        cash = LedgerAccount.objects.get(pk=_wallet(ctx)).balance * ctx.settlement.price.price
        deficit = max(-after.margin_balance, -cash)
        _cover(ctx, ledger_account=_wallet(ctx), deficit=deficit, where="cross")
        after, _ = ctx.quote()

    liquidation.margin_ratio_after = _stored_ratio(
        account_state_load(account).requirement().margin_ratio
    )
    liquidation.status = Liquidation.Status.DONE
    liquidation.completed_at = timezone.now()
    liquidation.save()
    for event in ctx.events:
        event.margin_ratio = liquidation.margin_ratio_before
    AccountEvent.objects.bulk_create(ctx.events)
    detail = {
        "liquidation": liquidation.pk,
        "fee": str(liquidation.fee),
        "insurance_cover": str(liquidation.insurance_cover),
        "steps": len(liquidation.steps),
    }
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

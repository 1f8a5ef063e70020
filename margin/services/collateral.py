"""Deposits and withdrawals of collateral between the outside world and a cross wallet."""

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal

from margin.engine.reference import effective_haircut_ratio
from margin.engine.types import ZERO
from margin.models import JournalKind, LedgerAccountKind, MarginAccount
from margin.selectors.accounts import AccountState, account_state_load, free_collateral
from margin.services.account_state import (
    Plan,
    Preview,
    Receipt,
    amount_parse,
    as_text,
    asset_check,
    preview_run,
    wallet_id,
    write_run,
)
from margin.services.ledger import QUANTUM, Line, journal_post


def _deposit_plan(*, asset: str, amount) -> Callable[[AccountState], Plan]:
    def plan(state: AccountState) -> Plan:
        symbol = asset_check(state, asset)
        quantity = amount_parse(amount, field="amount")
        return Plan(
            after=state.with_wallet(symbol, quantity),
            details={"asset": symbol, "amount": as_text(quantity)},
        )

    return plan


def _transfer_book(*, operation: str, kind: str, sign: int, actor):
    """Book a plan's amount of its asset: `sign` +1 into the wallet (deposit), −1 out of it."""

    def book(state: AccountState, plan: Plan) -> Receipt:
        asset = plan.details["asset"]
        amount = Decimal(plan.details["amount"])
        asset_id = state.asset_ids[asset]
        external = state.house_id(LedgerAccountKind.EXTERNAL, asset)
        journal = journal_post(
            kind=kind,
            margin_account_id=state.account_id,
            created_by_id=getattr(actor, "pk", None),
            lines=[
                Line(wallet_id(state, asset), asset_id, sign * amount),
                Line(external, asset_id, -sign * amount),
            ],
        )
        return Receipt(
            operation=operation,
            margin_account_id=state.account_id,
            journal_id=journal.pk,
            details={**plan.details, "balance": as_text(plan.after.wallets[asset])},
        )

    return book


def collateral_deposit(
    *,
    account: MarginAccount,
    asset: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    """Credit `amount` of `asset` from the outside world to the account's cross wallet."""
    return write_run(
        operation="collateral_deposit",
        account=account,
        request={"asset": asset, "amount": str(amount)},
        idempotency_key=idempotency_key,
        expected_fingerprint=expected_fingerprint,
        plan=_deposit_plan(asset=asset, amount=amount),
        book=_transfer_book(
            operation="collateral_deposit", kind=JournalKind.DEPOSIT, sign=1, actor=actor
        ),
    )


def collateral_deposit_preview(*, account: MarginAccount, asset: str, amount: Decimal) -> Preview:
    return preview_run(
        operation="collateral_deposit",
        account=account,
        plan=_deposit_plan(asset=asset, amount=amount),
    )


def max_withdrawal(state: AccountState, asset: str) -> Decimal:
    """The most of `asset` that can leave the cross wallet: what it holds, and no more than
    its share of the free collateral (collateral + unrealized losses − initial margin; gains
    stay in). Its haircut tiers are walked from the top, the first USD to leave being the ones
    counted at the highest tier's ratio."""
    balance = state.wallets.get(asset, ZERO)
    if balance <= 0:
        return ZERO
    free = free_collateral(state)
    if free <= 0:
        return ZERO
    price = state.prices[asset]
    value = balance * price
    scale = state.terms.credit_tiers[state.credit_tier].haircut_scale
    tiers = state.terms.haircuts.get(asset) or ()
    floors = [tier.floor for tier in tiers] or [ZERO]
    ratios = [effective_haircut_ratio(tier.ratio, scale) for tier in tiers] or [Decimal(1)]
    caps = [*floors[1:], None]
    released = ZERO
    for floor, cap, ratio in reversed(list(zip(floors, caps, ratios, strict=True))):
        if value <= floor:
            continue
        width = (value if cap is None else min(value, cap)) - floor
        if ratio == 0 or width * ratio <= free:
            released += width
            free -= width * ratio
        else:
            released += free / ratio
            break
    return min(balance, (released / price).quantize(QUANTUM, rounding=ROUND_DOWN))


def _withdraw_plan(*, asset: str, amount) -> Callable[[AccountState], Plan]:
    def plan(state: AccountState) -> Plan:
        symbol = asset_check(state, asset)
        quantity = amount_parse(amount, field="amount")
        after = state.with_wallet(symbol, -quantity)
        details = {"asset": symbol, "amount": as_text(quantity)}
        held = state.wallets.get(symbol, ZERO)
        if state.reduce_only:
            return Plan(
                after=None,
                refusal="This account is reduce-only (an unanswered margin call or the desk): "
                "nothing can be withdrawn until it is lifted.",
                refusal_field="amount",
                details=details,
            )
        if quantity > held:
            return Plan(
                after=None,
                refusal=f"The wallet holds {as_text(held)} {symbol}; "
                f"{as_text(quantity)} {symbol} cannot be withdrawn.",
                refusal_field="amount",
                details=details,
            )
        if free_collateral(after) < 0:
            most = max_withdrawal(state, symbol)
            return Plan(
                after=after,
                refusal=f"You can withdraw at most {as_text(most)} {symbol} now: open positions' "
                "initial margin and unrealized losses stay covered, and unrealized profit "
                "cannot be withdrawn.",
                refusal_field="amount",
                details=details,
            )
        return Plan(after=after, details=details)

    return plan


def collateral_withdraw(
    *,
    account: MarginAccount,
    asset: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    """Pay `amount` of `asset` out of the cross wallet: never more than it holds, nor more than
    the engine's withdrawable allows (see `max_withdrawal`)."""
    return write_run(
        operation="collateral_withdraw",
        account=account,
        request={"asset": asset, "amount": str(amount)},
        idempotency_key=idempotency_key,
        expected_fingerprint=expected_fingerprint,
        plan=_withdraw_plan(asset=asset, amount=amount),
        book=_transfer_book(
            operation="collateral_withdraw", kind=JournalKind.WITHDRAWAL, sign=-1, actor=actor
        ),
    )


def collateral_withdraw_preview(*, account: MarginAccount, asset: str, amount: Decimal) -> Preview:
    return preview_run(
        operation="collateral_withdraw",
        account=account,
        plan=_withdraw_plan(asset=asset, amount=amount),
    )


def collateral_max_withdrawal(*, account: MarginAccount, asset: str) -> Decimal:
    """The most of `asset` the account can withdraw now (for the withdraw form)."""
    state = account_state_load(account)
    return max_withdrawal(state, asset_check(state, asset))

"""Deposits and withdrawals of collateral between the outside world and a cross wallet."""

from decimal import Decimal

from margin.engine.fills import max_withdrawal
from margin.engine.types import ZERO
from margin.models import JournalKind, LedgerAccountKind, MarginAccount
from margin.selectors.accounts import AccountState, account_state_load, free_collateral
from margin.services.account_state import wallet_id
from margin.services.ledger import Line, journal_post
from margin.services.validation import amount_parse, asset_check
from margin.services.writes import Plan, Receipt, Write, as_text


def _deposit_plan(state: AccountState, *, asset: str, amount: Decimal) -> Plan:
    """Credit `amount` of `asset` from the outside world to the account's cross wallet."""
    symbol = asset_check(state, asset)
    quantity = amount_parse(amount, field="amount")
    return Plan(
        after=state.with_wallet(symbol, quantity),
        details={"asset": symbol, "amount": as_text(quantity)},
    )


def _transfer_post(*, kind: str, sign: int):
    """Book a plan's amount of its asset: `sign` +1 into the wallet (deposit), −1 out of it."""

    def post(state: AccountState, plan: Plan, *, operation: str, actor) -> Receipt:
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

    return post


collateral_deposit = Write(
    operation="collateral_deposit",
    plan=_deposit_plan,
    post=_transfer_post(kind=JournalKind.DEPOSIT, sign=1),
)


def _max_withdrawal(state: AccountState, asset: str) -> Decimal:
    """The engine's `max_withdrawal` of `asset` on the state (its free collateral is only
    computed when the wallet holds some)."""
    balance = state.wallets.get(asset, ZERO)
    return max_withdrawal(
        balance=balance,
        price=state.prices[asset],
        free_collateral=free_collateral(state) if balance > 0 else ZERO,
        haircut_tiers=state.terms.haircuts.get(asset) or (),
        haircut_scale=state.terms.credit_tiers[state.credit_tier].haircut_scale,
    )


def _withdraw_plan(state: AccountState, *, asset: str, amount: Decimal) -> Plan:
    """Pay `amount` of `asset` out of the cross wallet: never more than it holds, nor more than
    the engine's withdrawable allows (`margin.engine.fills.max_withdrawal`)."""
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
        most = _max_withdrawal(state, symbol)
        return Plan(
            after=after,
            refusal=f"You can withdraw at most {as_text(most)} {symbol} now: open positions' "
            "initial margin and unrealized losses stay covered, and unrealized profit "
            "cannot be withdrawn.",
            refusal_field="amount",
            details=details,
        )
    return Plan(after=after, details=details)


collateral_withdraw = Write(
    operation="collateral_withdraw",
    plan=_withdraw_plan,
    post=_transfer_post(kind=JournalKind.WITHDRAWAL, sign=-1),
)


def collateral_max_withdrawal(*, account: MarginAccount, asset: str) -> Decimal:
    """The most of `asset` the account can withdraw now (for the withdraw form)."""
    state = account_state_load(account)
    return _max_withdrawal(state, asset_check(state, asset))

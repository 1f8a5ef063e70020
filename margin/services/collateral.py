"""Deposits and withdrawals of collateral (signatures first; bodies land in the next commit).

Every write: one transaction, keyword-only, an idempotency key, an optional
`expected_fingerprint` from the preview the user confirmed (refused when stale).
"""

from decimal import Decimal

from margin.models import MarginAccount
from margin.services.account_state import Preview, Receipt


def collateral_deposit(
    *,
    account: MarginAccount,
    asset: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    raise NotImplementedError


def collateral_deposit_preview(*, account: MarginAccount, asset: str, amount: Decimal) -> Preview:
    raise NotImplementedError


def collateral_withdraw(
    *,
    account: MarginAccount,
    asset: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    """Never more than the engine's withdrawable (unrealized profit stays in), nor than the
    wallet holds of `asset`; see `collateral_max_withdrawal`."""
    raise NotImplementedError


def collateral_withdraw_preview(*, account: MarginAccount, asset: str, amount: Decimal) -> Preview:
    raise NotImplementedError


def collateral_max_withdrawal(*, account: MarginAccount, asset: str) -> Decimal:
    raise NotImplementedError

"""The state a write locks: the account as it stands (`margin.selectors.accounts.AccountState`)
loaded inside the write's transaction with its rows locked, and the ledger accounts a booking
creates on first use. The write's steps are in `margin.services.writes`, the checks of its input
in `margin.services.validation`."""

from django.db import connection

from margin.models import MarginAccount
from margin.selectors.accounts import AccountState, account_state_read
from margin.services.ledger import isolated_account_ensure, wallet_accounts_ensure


def _lock(alias: str) -> str:
    # SQLite locks the whole database instead.
    if connection.features.has_select_for_no_key_update:
        return f" FOR NO KEY UPDATE OF {alias}"
    return ""


def account_state_lock(account: MarginAccount | int) -> AccountState:
    """The account as it stands, inside a transaction, its row, positions and own ledger
    accounts locked in that order (see `margin.services.ledger`)."""
    return account_state_read(account, lock=_lock)


def wallet_id(state: AccountState, asset: str) -> int:
    """The account's cross wallet ledger account of `asset`, created on first use."""
    if asset in state.wallet_ids:
        return state.wallet_ids[asset]
    asset_id = state.asset_ids[asset]
    return wallet_accounts_ensure(margin_account_id=state.account_id, asset_ids=[asset_id])[
        asset_id
    ]


def isolated_id(state: AccountState, instrument: str, position_id: int) -> int:
    """The isolated margin ledger account of the position, created on first use."""
    known = state.positions.get(instrument)
    if known is not None and known.isolated_account_id is not None:
        return known.isolated_account_id
    return isolated_account_ensure(
        margin_account_id=state.account_id,
        position_id=position_id,
        asset_id=state.asset_ids[state.settlement],
    )

"""Leverage, isolated margin and cross/isolated switches of a position (signatures first)."""

from decimal import Decimal
from typing import Literal

from margin.models import MarginAccount
from margin.services.account_state import Preview, Receipt


def position_leverage_set(
    *,
    account: MarginAccount,
    instrument: str,
    leverage: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    raise NotImplementedError


def position_leverage_set_preview(
    *, account: MarginAccount, instrument: str, leverage: Decimal
) -> Preview:
    raise NotImplementedError


def isolated_margin_add(
    *,
    account: MarginAccount,
    instrument: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    raise NotImplementedError


def isolated_margin_remove(
    *,
    account: MarginAccount,
    instrument: str,
    amount: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    raise NotImplementedError


def position_margin_mode_switch(
    *,
    account: MarginAccount,
    instrument: str,
    mode: Literal["cross", "isolated"],
    isolated_margin: Decimal | None = None,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    """To isolated: fence `isolated_margin` (≥ the position's initial margin) from the cross
    wallet; to cross: release it. Refused with the reason when either side would fall under its
    initial margin."""
    raise NotImplementedError

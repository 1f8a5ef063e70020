"""Fills: open, increase, reduce, close or flip a position (signatures first)."""

from decimal import Decimal
from typing import Literal

from margin.models import MarginAccount
from margin.services.account_state import Preview, Receipt

type Side = Literal["buy", "sell"]


def position_market_fill(
    *,
    account: MarginAccount,
    instrument: str,
    side: Side,
    quantity: Decimal,
    idempotency_key: str,
    expected_fingerprint: str | None = None,
    actor=None,
) -> Receipt:
    """A simulated market fill at the current mark plus the taker fee of the version in force."""
    raise NotImplementedError


def position_market_fill_preview(
    *, account: MarginAccount, instrument: str, side: Side, quantity: Decimal
) -> Preview:
    raise NotImplementedError


def position_fill(
    *,
    account: MarginAccount,
    instrument: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    reason: Literal["liquidation", "adl", "desk"],
    reference: str,
    fee: Decimal = Decimal(0),
    actor=None,
) -> Receipt:
    """A fill at a given price for the liquidation engine and the desk: no margin checks,
    `reference` is the caller's uniqueness (the same reference books once)."""
    raise NotImplementedError

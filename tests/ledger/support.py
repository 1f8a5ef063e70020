"""Helpers of the ledger tests: keys, funding, fills, marks and balances."""

import uuid
from decimal import Decimal

from margin.models import LedgerAccount, LedgerAccountKind, MarkPrice
from margin.services.collateral import collateral_deposit
from margin.services.positions import position_market_fill


def new_key() -> str:
    return str(uuid.uuid4())


def fund(account, asset: str, amount: str) -> None:
    collateral_deposit(
        account=account, asset=asset, amount=Decimal(amount), idempotency_key=new_key()
    )


def trade(account, side: str, quantity: str, instrument: str = "BTCUSDT"):
    """A market fill at the current mark."""
    return position_market_fill(
        account=account,
        instrument=instrument,
        side=side,
        quantity=Decimal(quantity),
        idempotency_key=new_key(),
    )


def set_mark(instrument: str, price: str) -> None:
    MarkPrice.objects.filter(instrument__symbol=instrument).update(mark_price=Decimal(price))


def balance(account, kind: str = LedgerAccountKind.WALLET, asset: str = "USDT") -> Decimal:
    return LedgerAccount.objects.filter(
        margin_account=account, kind=kind, asset__symbol=asset
    ).values_list("balance", flat=True).first() or Decimal(0)


def house(kind: str, asset: str = "USDT") -> Decimal:
    return LedgerAccount.objects.get(
        margin_account__isnull=True, kind=kind, asset__symbol=asset
    ).balance

"""Accounts with collateral and positions, booked through the ledger services."""

from decimal import Decimal
from itertools import count

from margin.engine.quotes import PERP, SPOT, Quote
from margin.market.demo import VENUES
from margin.models import Instrument
from margin.services.collateral import collateral_deposit
from margin.services.ledger import margin_account_open
from margin.services.positions import position_market_fill
from margin.services.prices import prices_refresh, quotes_record
from tests.factories import UserFactory

_keys = count()


def funded_account(*, usdt="1000", fills=(), tier="standard", user=None, name="Main", **collateral):
    """A margin account holding `usdt` (and other assets by symbol) with market fills
    [(instrument, "buy"|"sell", quantity)] at the current marks."""
    account = margin_account_open(owner=user or UserFactory(), name=name, credit_tier=tier)
    for asset, amount in {"USDT": usdt, **collateral}.items():
        if Decimal(amount) == 0:
            continue
        collateral_deposit(
            account=account,
            asset=asset,
            amount=Decimal(amount),
            idempotency_key=f"test-deposit-{next(_keys)}",
        )
    for instrument, side, quantity in fills:
        position_market_fill(
            account=account,
            instrument=instrument,
            side=side,
            quantity=Decimal(quantity),
            idempotency_key=f"test-fill-{next(_keys)}",
        )
    return account


def market_prices(*, at, venues=VENUES, **prices):
    """Every venue quotes each asset (by symbol) at its price, and each of its perpetuals and
    futures at the same price; then the prices are refreshed through the guard."""
    quotes = []
    for symbol, price in prices.items():
        price = Decimal(str(price))
        quotes += [Quote(v, SPOT, symbol, price, at) for v in venues]
        for instrument in Instrument.objects.filter(underlying__symbol=symbol):
            quotes += [Quote(v, PERP, instrument.symbol, price, at) for v in venues]
    quotes_record(quotes=quotes)
    return prices_refresh(now=at)

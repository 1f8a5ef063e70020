"""Accounts for the trader pages: booked through the services, on the demo reference data."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from margin.models import (
    Bracket,
    CreditTierTerms,
    HaircutTier,
    Instrument,
    MarkPrice,
    ParameterVersion,
)
from margin.selectors.parameters import parameters_in_force
from tests.revaluation.factories import funded_account


def new_key() -> str:
    return str(uuid.uuid4())


def previewed(client, url: str, data: dict) -> dict:
    """`data` with the fingerprint its preview hands the form (an order is booked only with
    the fingerprint of a preview of exactly that order)."""
    response = client.post(url, {**data, "preview": "1", "idempotency_key": new_key()})
    found = re.search(r'name="previewed" value="([0-9a-f]+)"', response.content.decode())
    assert found, "the preview gave no fingerprint"
    return {**data, "previewed": found.group(1)}


def extra_perpetuals(count: int) -> list[str]:
    """`count` more BTC perpetuals (one bracket each, at the BTC mark) in a new parameter version
    that copies the one in force: enough instruments for an account of many positions."""
    current = parameters_in_force()
    version = ParameterVersion.objects.create(
        number=current.number + 1, effective_at=timezone.now() - timedelta(seconds=1)
    )
    for model in (HaircutTier, Bracket, CreditTierTerms):
        rows = list(model.objects.filter(version=current))
        for row in rows:
            row.pk = None
            row.version = version
        model.objects.bulk_create(rows)
    btc = Instrument.objects.get(symbol="BTCUSDT")
    symbols = []
    for n in range(count):
        instrument = Instrument.objects.create(symbol=f"BTC{n}USDT", underlying=btc.underlying)
        MarkPrice.objects.create(
            instrument=instrument,
            mark_price=btc.mark.mark_price,
            index_price=btc.mark.index_price,
            updated_at=timezone.now(),
        )
        Bracket.objects.create(
            version=version,
            instrument=instrument,
            floor=Decimal(0),
            mmr=Decimal("0.005"),
            max_leverage=Decimal(50),
        )
        symbols.append(instrument.symbol)
    return symbols


def account_with_positions(user, symbols: list[str], *, name: str):
    """An account `name` of `user`: enough USDT, a little BTC, a 0.01 long in each of
    `symbols`."""
    account = funded_account(
        user=user, usdt="500000", BTC="1", fills=[(s, "buy", "0.01") for s in symbols]
    )
    account.name = name
    account.save(update_fields=["name"])
    return account

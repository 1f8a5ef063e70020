"""What a price source hands over: quotes. A source is anything that yields them (the demo
market's simulated venues, or a real feed); `margin.services.prices.quotes_record` stores them."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

SPOT = "spot"  # an asset's spot price: feeds its index
PERP = "perp"  # an instrument's traded price: feeds its mark's basis


@dataclass(frozen=True)
class Quote:
    source: str
    kind: str
    symbol: str
    price: Decimal
    at: datetime


class PriceSource(Protocol):
    def quotes(self, *, now: datetime) -> Iterable[Quote]: ...

"""Market time: the demo market runs DEMO_MARKET_SPEED times faster than the wall clock, so a
rule written in market time (8 hours between fundings, a settlement TWAP over 30 minutes, a
notice one day before expiry) lasts that many times fewer real seconds in the demo."""

from datetime import timedelta

from django.conf import settings


def market_speed() -> float:
    return settings.DEMO_MARKET_SPEED if settings.DEMO_MARKET_ENABLED else 1.0


def real_duration(market: timedelta) -> timedelta:
    """How long `market` time lasts on the wall clock."""
    return market / market_speed()

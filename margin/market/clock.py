"""Market time: the demo market runs DEMO_MARKET_SPEED times faster than the wall clock, so a
rule written in market time (8 hours between fundings, a settlement TWAP over 30 minutes, a
notice one day before expiry) lasts that many times fewer real seconds in the demo."""

from datetime import datetime, timedelta

from django.conf import settings


def market_speed() -> float:
    return settings.DEMO_MARKET_SPEED if settings.DEMO_MARKET_ENABLED else 1.0


def real_duration(market: timedelta) -> timedelta:
    """How long `market` time lasts on the wall clock."""
    return market / market_speed()


def market_days_between(start: datetime, end: datetime) -> float:
    """Days of market time from `start` to `end` on the wall clock (negative when past): what
    an option's time to expiry counts in the demo's compressed time."""
    return (end - start).total_seconds() * market_speed() / 86_400

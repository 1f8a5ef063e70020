"""Options in tests: the demo's listing switched on, and a listed BTC series looked up."""

from margin.models import Instrument
from margin.services.options_listing import options_listing_ensure


def options_listed(settings, *, now) -> None:
    """The demo market's speed (60) with options listed on BTC and ETH at `now`: terms of 12,
    48 and 168 market hours (as many real minutes)."""
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    settings.OPTIONS_LISTING_ENABLED = True
    settings.OPTION_TERMS_HOURS = [12.0, 48.0, 168.0]
    options_listing_ensure(now=now)


def series(option_type: str, strike: int, term: int = 0) -> Instrument:
    """The BTC option of that type and strike in the `term`-th expiry (0: the nearest, −1: the
    longest)."""
    listed = Instrument.objects.filter(
        kind="option", underlying__symbol="BTC", option_type=option_type, strike=strike
    ).order_by("expiry")
    return list(listed)[term]

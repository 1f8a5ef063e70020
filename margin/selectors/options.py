"""Reads of the options market: the demo market's regimes the surface follows, the live
option series with their marks, and the chain (strikes × expiries) a trader picks from."""

from dataclasses import dataclass

from margin.market.demo import CALM
from margin.market.surface import atm_vol, surface_parameters
from margin.models import Instrument, SimulatedAsset


def market_regimes() -> dict[int, str]:
    """The demo market's regime per asset id (absent: calm)."""
    return dict(SimulatedAsset.objects.values_list("asset_id", "regime"))


def live_options():
    """Active option series with their underlying and mark, by underlying, expiry, strike."""
    return (
        Instrument.objects.filter(kind=Instrument.Kind.OPTION, is_active=True)
        .select_related("underlying", "mark")
        .order_by("underlying__symbol", "expiry", "strike", "option_type")
    )


@dataclass(frozen=True)
class SurfaceRow:
    underlying: str
    regime: str
    parameters: dict[str, float]
    atm_by_term: list[tuple[float, float]]  # (market days, ATM vol)


def surface_disclosure(terms_days: list[float]) -> list[SurfaceRow]:
    """Per option underlying: the surface's parameters in its current regime and its ATM vol
    at each listed term."""
    regimes = market_regimes()
    rows = []
    for asset_id, symbol in (
        Instrument.objects.filter(kind=Instrument.Kind.OPTION)
        .values_list("underlying_id", "underlying__symbol")
        .distinct()
        .order_by("underlying__symbol")
    ):
        regime = regimes.get(asset_id, CALM)
        rows.append(
            SurfaceRow(
                underlying=symbol,
                regime=regime,
                parameters=surface_parameters(regime),
                atm_by_term=[(days, atm_vol(symbol, regime, days)) for days in terms_days],
            )
        )
    return rows

"""Reads of the options market: the demo market's regimes the surface follows, the live
option series with their marks, the chain (strikes × expiries) a trader picks from, and the
options an account holds as the engine prices them now."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.conf import settings

from margin.engine.options import OptionQuote
from margin.engine.options_vector import black76, black76_value
from margin.engine.types import LONG, ONE, ZERO, OptionInput
from margin.market.clock import market_days_between
from margin.market.demo import CALM
from margin.market.surface import (
    NO_JUMP,
    QUOTE_HALF_SPREAD_VOL,
    Jump,
    atm_vol,
    surface_parameters,
)
from margin.models import Instrument, MarginAccount, SimulatedAsset
from margin.selectors.accounts import LEAST_EXPIRY_DAYS, OptionTerms
from margin.selectors.figures import figures_now


@dataclass(frozen=True)
class SurfaceInputs:
    """What the demo market's surface follows, per underlying asset id: its regime (absent:
    calm), its last jump aged in market time (absent: none yet), and the seconds since the
    market last stepped it (absent: the demo market does not simulate it, so its surface has no
    input of its own to age and follows its forward alone)."""

    regime_of: dict[int, str]
    jump_of: dict[int, Jump]
    age_s_of: dict[int, float]


def surface_inputs(now: datetime) -> SurfaceInputs:
    """The demo market's surface inputs at `now` (`margin.market.surface`)."""
    regimes, jumps, ages = {}, {}, {}
    for asset_id, regime, log_return, jumped_at, stepped_at in SimulatedAsset.objects.values_list(
        "asset_id", "regime", "last_jump_log_return", "last_jump_at", "stepped_at"
    ):
        regimes[asset_id] = regime
        ages[asset_id] = (now - stepped_at).total_seconds()
        if jumped_at is not None:
            jumps[asset_id] = Jump(
                log_return=float(log_return),
                age_hours=(now - jumped_at).total_seconds() * settings.DEMO_MARKET_SPEED / 3600,
            )
    return SurfaceInputs(regime_of=regimes, jump_of=jumps, age_s_of=ages)


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


def surface_disclosure(terms_days: list[float], now: datetime) -> list[SurfaceRow]:
    """Per option underlying: the surface's parameters in its current regime and after the
    last jump, and its ATM vol at each listed term."""
    inputs = surface_inputs(now)
    rows = []
    for asset_id, symbol in (
        Instrument.objects.filter(kind=Instrument.Kind.OPTION)
        .values_list("underlying_id", "underlying__symbol")
        .distinct()
        .order_by("underlying__symbol")
    ):
        regime = inputs.regime_of.get(asset_id, CALM)
        jump = inputs.jump_of.get(asset_id, NO_JUMP)
        rows.append(
            SurfaceRow(
                underlying=symbol,
                regime=regime,
                parameters=surface_parameters(regime, jump),
                atm_by_term=[(days, atm_vol(symbol, regime, days, jump)) for days in terms_days],
            )
        )
    return rows


@dataclass(frozen=True)
class ChainQuote:
    """One series of the chain: the quote of the surface (bid and ask in vol around the mark)
    and the Greeks per contract (vega per vol point, theta per day)."""

    symbol: str
    bid: float
    mark: Decimal
    ask: float
    implied_vol: Decimal
    delta: float
    gamma: float
    vega: float
    theta: float


@dataclass(frozen=True)
class ChainRow:
    strike: Decimal
    call: ChainQuote | None
    put: ChainQuote | None


@dataclass(frozen=True)
class ChainExpiry:
    underlying: str
    expiry: datetime
    days: float  # market days to expiry
    forward: Decimal
    rows: list[ChainRow]


def option_chain(*, now: datetime) -> list[ChainExpiry]:
    """The live, marked series by underlying and expiry, strikes ascending, calls beside puts."""
    series = [o for o in live_options() if hasattr(o, "mark") and o.mark.implied_vol]
    if not series:
        return []
    days = np.array(
        [max(market_days_between(now, o.expiry), float(LEAST_EXPIRY_DAYS)) for o in series]
    )
    is_call = np.array([o.option_type == Instrument.OptionType.CALL for o in series])
    forward = np.array([float(o.mark.index_price) for o in series])
    strike = np.array([float(o.strike) for o in series])
    vol = np.array([float(o.mark.implied_vol) for o in series])
    greeks = black76(is_call, forward, strike, vol, days)
    bid = black76_value(
        is_call, forward, strike, np.maximum(vol - QUOTE_HALF_SPREAD_VOL, 0.01), days
    )
    ask = black76_value(is_call, forward, strike, vol + QUOTE_HALF_SPREAD_VOL, days)
    quotes: dict[tuple, dict[Decimal, dict[str, ChainQuote]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for n, option in enumerate(series):
        key = (option.underlying.symbol, option.expiry)
        quotes[key][option.strike][option.option_type] = ChainQuote(
            symbol=option.symbol,
            bid=float(bid[n]),
            mark=option.mark.mark_price,
            ask=float(ask[n]),
            implied_vol=option.mark.implied_vol,
            delta=float(greeks.delta[n]),
            gamma=float(greeks.gamma[n]),
            vega=float(greeks.vega[n]),
            theta=float(greeks.theta[n]),
        )
    first_of = {}
    for n, option in enumerate(series):
        first_of.setdefault((option.underlying.symbol, option.expiry), n)
    return [
        ChainExpiry(
            underlying=underlying,
            expiry=expiry,
            days=float(days[first_of[underlying, expiry]]),
            forward=series[first_of[underlying, expiry]].mark.index_price,
            rows=[
                ChainRow(strike=k, call=by_type.get("call"), put=by_type.get("put"))
                for k, by_type in sorted(strikes.items())
            ],
        )
        for (underlying, expiry), strikes in sorted(quotes.items())
    ]


@dataclass(frozen=True)
class HeldOption:
    """An option the account holds, as the engine prices it now: the series' terms (forward,
    implied vol, market days to expiry) and the quote's row (mark, Greeks per contract)."""

    terms: OptionTerms
    quote: OptionQuote


def held_options(account: MarginAccount | int) -> dict[str, HeldOption]:
    """Per option symbol the account holds (open), its terms and quote from `figures_now`: the
    figures the account's page, explain and API all read."""
    figures = figures_now(account)
    by_engine_id = {row.id: row for row in figures.quote.options}
    return {
        position.instrument: HeldOption(
            terms=figures.state.options[position.instrument],
            quote=by_engine_id[position.engine_id],
        )
        for position in figures.state.positions.values()
        if position.engine_id in by_engine_id
    }


def series_as_marked(symbol: str) -> OptionInput | None:
    """A live, marked series as its published mark was computed (`services.option_marks`): one
    long contract at the mark's forward and implied vol, the market days from the mark's time
    to expiry; None for no such series."""
    option = next((o for o in live_options().filter(symbol=symbol) if hasattr(o, "mark")), None)
    if option is None or not option.mark.implied_vol:
        return None
    days = max(market_days_between(option.mark.updated_at, option.expiry), float(LEAST_EXPIRY_DAYS))
    return OptionInput(
        id=symbol,
        underlying=option.underlying.symbol,
        option_type=option.option_type,
        strike=option.strike,
        expiry_days=Decimal(days),  # the very float the mark was priced at
        implied_vol=option.mark.implied_vol,
        underlying_price=option.mark.index_price,
        side=LONG,
        quantity=ONE,
        entry_price=ZERO,
    )

"""The demo market: correlated geometric Brownian motion over the demo assets, with volatility
regimes and rare jumps, quoted by a few simulated venues with small independent noise.

Pure NumPy: `market_step` moves the hidden 'true' prices, `venue_quotes` turns them into what
each venue prints. Crypto assets share one market factor (a one-factor model: every pair has
correlation `CRYPTO_CORRELATION`); stablecoins mean-revert to 1 with tiny noise. Time runs
`speed` times faster than the wall clock so that the dashboard visibly moves.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np

from margin.engine.quotes import PERP, SPOT, Quote

SECONDS_PER_YEAR = 365.0 * 24 * 3600
VENUES = ("venue-a", "venue-b", "venue-c")
VENUE_NOISE = 0.0002  # 2 bp between venues
PERP_PREMIUM_NOISE = 0.0004
CRYPTO_CORRELATION = 0.8
# Annualized volatility in the calm regime; the stressed regime multiplies it.
ANNUAL_VOLATILITY = {"BTC": 0.55, "ETH": 0.7, "SOL": 0.95}
DEFAULT_VOLATILITY = 0.8
STRESSED_MULTIPLIER = 2.5
# Regime switches and jumps, per simulated second.
CALM_TO_STRESSED_RATE = 1 / (6 * 3600)
STRESSED_TO_CALM_RATE = 1 / (2 * 3600)
JUMP_RATE = 1 / (7 * 24 * 3600)
JUMP_MEAN, JUMP_STD = -0.01, 0.03
# Stablecoins: Ornstein-Uhlenbeck around 1 (half-life of an hour, 10 bp of daily noise).
STABLE_REVERSION_RATE = np.log(2) / 3600
STABLE_DAILY_NOISE = 0.001
STABLECOINS = frozenset({"USDT", "USDC", "USDE", "DAI", "FDUSD"})
START_PRICES = {"BTC": 95_000.0, "ETH": 3_500.0, "SOL": 180.0}
CALM, STRESSED = "calm", "stressed"
# USD traded per day that a close-out can run into, calm (spot; the perpetuals trade
# PERP_DEPTH_MULTIPLE times their spot). Of the order of a tenth of what the large venues
# print (CoinGecko's daily spot volumes: BTC tens of billions, SOL a few), since one venue's
# share is what a liquidation meets. In a stressed regime books thin out: depth falls with the
# square of the volatility's rise (market makers quote size inversely to variance).
DAILY_DEPTH_USD = {"BTC": 3e9, "ETH": 1.5e9, "SOL": 4e8}
STABLE_DAILY_DEPTH_USD = 5e9
DEFAULT_DAILY_DEPTH_USD = 1e8
PERP_DEPTH_MULTIPLE = 2.0


def is_stablecoin(symbol: str) -> bool:
    return symbol.upper() in STABLECOINS


def start_price(symbol: str) -> float:
    return 1.0 if is_stablecoin(symbol) else START_PRICES.get(symbol.upper(), 100.0)


@dataclass(frozen=True)
class MarketState:
    symbols: tuple[str, ...]
    prices: np.ndarray
    regime: str
    jump: float = 0.0  # the log return of the jump in the last step, 0 when none


def market_step(
    state: MarketState, *, dt_s: float, rng: np.random.Generator, jump_rate: float = JUMP_RATE
) -> MarketState:
    """Advance the true prices by `dt_s` simulated seconds; jumps come at `jump_rate` per
    simulated second (the demo raises it so that a visitor sees one)."""
    regime = state.regime
    switch_rate = CALM_TO_STRESSED_RATE if regime == CALM else STRESSED_TO_CALM_RATE
    if rng.random() < 1 - np.exp(-switch_rate * dt_s):
        regime = STRESSED if regime == CALM else CALM
    stable = np.array([is_stablecoin(s) for s in state.symbols])
    sigma = np.array([ANNUAL_VOLATILITY.get(s.upper(), DEFAULT_VOLATILITY) for s in state.symbols])
    if regime == STRESSED:
        sigma = sigma * STRESSED_MULTIPLIER
    dt_years = dt_s / SECONDS_PER_YEAR
    factor = rng.standard_normal()
    idiosyncratic = rng.standard_normal(len(state.symbols))
    shock = np.sqrt(CRYPTO_CORRELATION) * factor + np.sqrt(1 - CRYPTO_CORRELATION) * idiosyncratic
    log_return = -0.5 * sigma**2 * dt_years + sigma * np.sqrt(dt_years) * shock
    jump = 0.0
    if rng.random() < 1 - np.exp(-jump_rate * dt_s):
        jump = float(rng.normal(JUMP_MEAN, JUMP_STD))
        log_return = log_return + jump
    crypto_prices = state.prices * np.exp(log_return)

    reversion = np.exp(-STABLE_REVERSION_RATE * dt_s)
    stable_noise = STABLE_DAILY_NOISE * np.sqrt(dt_s / 86_400) * idiosyncratic
    stable_prices = 1 + (state.prices - 1) * reversion + stable_noise
    prices = np.where(stable, stable_prices, crypto_prices)
    return MarketState(symbols=state.symbols, prices=prices, regime=regime, jump=jump)


def market_depth(symbol: str, regime: str) -> float:
    """USD of `symbol`'s spot market traded per day in the demo, thinner when stressed."""
    if is_stablecoin(symbol):
        depth = STABLE_DAILY_DEPTH_USD
    else:
        depth = DAILY_DEPTH_USD.get(symbol.upper(), DEFAULT_DAILY_DEPTH_USD)
    return depth / STRESSED_MULTIPLIER**2 if regime == STRESSED else depth


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.10g}")


def venue_quotes(
    *,
    asset_prices: dict[str, float],
    instruments: Sequence[tuple[str, str]],
    at: datetime,
    rng: np.random.Generator,
) -> list[Quote]:
    """Every venue's spot print of each asset and traded price of each instrument
    (`instruments`: (instrument symbol, underlying symbol))."""
    quotes = []
    for venue in VENUES:
        for symbol, price in asset_prices.items():
            noisy = price * (1 + rng.normal(0, VENUE_NOISE))
            quotes.append(Quote(venue, SPOT, symbol, _decimal(noisy), at))
        for symbol, underlying in instruments:
            noisy = asset_prices[underlying] * (1 + rng.normal(0, PERP_PREMIUM_NOISE))
            quotes.append(Quote(venue, PERP, symbol, _decimal(noisy), at))
    return quotes

"""The options of the engine benchmark: a deterministic random option book beside the demo book
of `margin.bench.engine`, on BTC and ETH series as the venues list them (weekly, monthly and
quarterly expiries, a strike ladder around the money, calls and puts) with a smile.
"""

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from margin.engine.options_vector import (
    OptionBook,
    OptionMarket,
    OptionPositions,
    OptionSeries,
    black76_value,
)
from margin.engine.types import CALL, PUT, OptionInput

OPTION_UNDERLYINGS = ("BTC", "ETH")
EXPIRY_DAYS = (1.0, 2.0, 7.0, 14.0, 21.0, 28.0, 56.0, 91.0, 182.0)
# Strikes at these fractions of the forward: 25 of them from −40 % to +80 %.
STRIKE_RATIOS = np.round(np.exp(np.linspace(np.log(0.6), np.log(1.8), 25)), 3)
ATM_VOL = {"BTC": 0.55, "ETH": 0.7}
SMILE = 0.6  # vol grows by this × ln(K/F)² away from the money
TERM = 0.1  # short expiries' vol above the long ones': × (1 + TERM × (30/days)^0.25 − TERM)


def option_market(asset_names: Sequence[str], asset_prices: np.ndarray, n_keys: int):
    """Every listed series of the benchmark: its row, underlying key, forward and vol."""
    underlying, is_call, strike, days, forward, vol, names = [], [], [], [], [], [], []
    for name in OPTION_UNDERLYINGS:
        key = list(asset_names).index(name)
        price = float(asset_prices[key])
        for expiry in EXPIRY_DAYS:
            for ratio in STRIKE_RATIOS:
                for call in (True, False):
                    underlying.append(key)
                    is_call.append(call)
                    strike.append(round(price * ratio))
                    days.append(expiry)
                    forward.append(price)
                    term = 1.0 + TERM * ((30.0 / expiry) ** 0.25 - 1.0)
                    vol.append(ATM_VOL[name] * term * (1.0 + SMILE * np.log(ratio) ** 2))
                    names.append(
                        f"{name}-{expiry:g}D-{round(price * ratio)}-{'C' if call else 'P'}"
                    )
    series = OptionSeries(
        underlying=np.array(underlying),
        is_call=np.array(is_call),
        strike=np.array(strike, dtype=np.float64),
        expiry_days=np.array(days),
        names=tuple(names),
    )
    return series, OptionMarket(forwards=np.array(forward), vols=np.array(vol))


def random_option_book(demo, n_options: int, *, seed: int = 11) -> tuple[OptionBook, OptionMarket]:
    """`n_options` option positions over the accounts of `demo` (a `DemoBook`), sorted by
    account: near-the-money and short expiries trade most, sizes lognormal around 0.1 BTC
    (or its worth in ETH), entered near today's value."""
    book = demo.book
    rng = np.random.default_rng(seed)
    series, market = option_market(book.asset_names, demo.asset_prices, book.n_assets)
    # Weights: near the money and near expiry trade most.
    moneyness = np.log(series.strike / market.forwards)
    weight = np.exp(-((moneyness / 0.2) ** 2)) / np.sqrt(series.expiry_days)
    chosen = rng.choice(len(series), n_options, p=weight / weight.sum())
    account = np.sort(rng.integers(0, book.n_accounts, n_options))
    notional = np.exp(rng.normal(np.log(8000.0), 1.2, n_options))
    quantity = np.maximum(notional / market.forwards[chosen], 1e-3)
    value = black76_value(
        series.is_call, market.forwards, series.strike, market.vols, series.expiry_days
    )
    entry = value[chosen] * np.exp(rng.normal(0.0, 0.1, n_options))
    positions = OptionPositions(
        account=account,
        series=chosen,
        side=rng.choice(np.array([-1.0, 1.0]), n_options),
        quantity=quantity,
        entry_price=entry,
    )
    option_book = OptionBook(
        book=book,
        series=series,
        positions=positions,
        n_keys=book.n_assets,
        portfolio=np.zeros(book.n_accounts, dtype=bool),
        key_names=book.asset_names,
    )
    return option_book, market


def option_inputs(
    option_book: OptionBook, market: OptionMarket, account: int
) -> tuple[OptionInput, ...]:
    """The reference engine's option positions of one account (floats as their shortest
    decimal)."""
    positions, series = option_book.positions, option_book.series
    start, end = np.searchsorted(positions.account, [account, account + 1])
    rows = []
    for p in range(start, end):
        s = positions.series[p]
        rows.append(
            OptionInput(
                id=f"{series.names[s]}#{p}",
                underlying=option_book.key_names[series.underlying[s]],
                option_type=CALL if series.is_call[s] else PUT,
                strike=Decimal(repr(float(series.strike[s]))),
                expiry_days=Decimal(repr(float(series.expiry_days[s]))),
                implied_vol=Decimal(repr(float(market.vols[s]))),
                underlying_price=Decimal(repr(float(market.forwards[s]))),
                side=int(positions.side[p]),
                quantity=Decimal(repr(float(positions.quantity[p]))),
                entry_price=Decimal(repr(float(positions.entry_price[p]))),
            )
        )
    return tuple(rows)

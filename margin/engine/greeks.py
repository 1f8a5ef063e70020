"""The book's exposure by Greek per underlying, over every account: what the venue as a whole
is long or short of if the market moves (delta, gamma), if implied vol moves (vega) or as a day
passes (theta). Vectorized over the series (`options_vector.black76`), then summed per
underlying with the positions' signed sizes; perpetuals and futures add their delta (±q)."""

from dataclasses import dataclass

import numpy as np

from margin.engine.options_vector import OptionBook, OptionMarket, black76


@dataclass(frozen=True)
class GreekExposures:
    """Per underlying key of the option book (its book's assets, then option-only
    underlyings): net delta in units of the underlying (options, linear positions, both),
    gamma per unit, vega per vol point and theta per day in USD, summed as side × quantity over
    every position; `holders` counts the accounts holding an option on it."""

    names: tuple[str, ...]
    option_delta: np.ndarray
    linear_delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    holders: np.ndarray

    @property
    def net_delta(self) -> np.ndarray:
        return self.option_delta + self.linear_delta


def _by_key(keys: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(keys, weights=weights, minlength=n)[:n].astype(float)


def greek_exposures(options: OptionBook, market: OptionMarket) -> GreekExposures:
    """Σ side × quantity × each Greek per underlying, the options at `market` (a forward and a
    vol per series); every linear position of the book (cross or isolated) adds its delta."""
    series, positions, book, n = options.series, options.positions, options.book, options.n_keys
    greeks = black76(
        series.is_call, market.forwards, series.strike, market.vols, series.expiry_days
    )
    signed = positions.side * positions.quantity
    key = series.underlying[positions.series]
    held = np.unique(positions.account * n + key)
    return GreekExposures(
        names=options.key_names,
        option_delta=_by_key(key, signed * greeks.delta[positions.series], n),
        linear_delta=_by_key(
            book.instrument_asset[book.pos_instrument], book.pos_side * book.pos_quantity, n
        ),
        gamma=_by_key(key, signed * greeks.gamma[positions.series], n),
        vega=_by_key(key, signed * greeks.vega[positions.series], n),
        theta=_by_key(key, signed * greeks.theta[positions.series], n),
        holders=np.bincount(held % n, minlength=n)[:n],
    )

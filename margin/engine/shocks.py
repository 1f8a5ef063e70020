"""The scenario library: each scenario is a relative move of every asset's price (−0.3 = −30 %).

Instruments move with their underlying asset (`Book.instrument_asset`), so one vector of asset
moves shocks collateral and positions together, as a real market move would.
"""

from collections.abc import Sequence

import numpy as np

from margin.engine.vector import Book

# A price can fall at most this far: a move of −100 % would leave a price the engine refuses.
FLOOR_MOVE = -0.99


def uniform_shock(n_assets: int, move: float, *, held: Sequence[int] = ()) -> np.ndarray:
    """Every asset moves by `move`, except the `held` ones (the settlement coin)."""
    moves = np.full(n_assets, float(move))
    moves[list(held)] = 0.0
    return moves


def volatility_scaled_shock(
    volatility: np.ndarray, k_sigma: float, *, direction: float = -1.0
) -> np.ndarray:
    """Each asset moves k standard deviations of its own (EWMA) volatility over the horizon, in
    one direction: a 3σ day for every coin at once."""
    return direction * k_sigma * np.asarray(volatility, dtype=float)


def correlated_crash(covariance: np.ndarray, k_sigma: float) -> np.ndarray:
    """The market's main risk factor falls k standard deviations: the first principal component
    of the return covariance, scaled by √λ₁ × k, signed so that the assets fall together.

    It is the move the covariance says is most likely for a crash of that size, so correlated
    coins fall together and a hedge only helps as much as the history says it does.
    """
    covariance = np.asarray(covariance, dtype=float)
    if not covariance.size or not np.any(covariance):
        return np.zeros(len(covariance))
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    factor = eigenvectors[:, -1] * np.sqrt(max(eigenvalues[-1], 0.0))
    if factor.sum() > 0:
        factor = -factor
    return k_sigma * factor


def depeg(n_assets: int, asset: int, move: float) -> np.ndarray:
    """One collateral asset (a stablecoin) loses its peg by `move`; nothing else moves."""
    moves = np.zeros(n_assets)
    moves[asset] = float(move)
    return moves


def carried_forward(path: np.ndarray) -> np.ndarray:
    """Steps × assets prices with each missing (non-finite) price repeating the step before."""
    filled = np.array(path, dtype=float)
    for step in range(1, len(filled)):
        gap = ~np.isfinite(filled[step])
        filled[step, gap] = filled[step - 1, gap]
    return filled


def replay_moves(path: np.ndarray) -> np.ndarray:
    """A recorded stretch of the market (steps × assets prices) as moves from its first step,
    one row per later step; a step without a price for an asset repeats its last one."""
    filled = carried_forward(path)
    return filled[1:] / filled[0] - 1.0


def shocked_prices(
    book: Book, marks: np.ndarray, asset_prices: np.ndarray, moves: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Marks and asset prices after the assets move by `moves` (clipped at −99 %). Marks are
    quoted in the settlement coin (BTCUSDT in USDT), so a move of that coin's own price moves
    every mark the other way: BTC held in USD while USDT loses 10 % costs 1 / 0.9 USDT more."""
    moves = np.maximum(np.asarray(moves, dtype=float), FLOOR_MOVE)
    moved_marks = marks * (1.0 + moves[book.instrument_asset])
    if book.settlement_asset >= 0:
        moved_marks /= 1.0 + moves[book.settlement_asset]
    return moved_marks, asset_prices * (1.0 + moves)

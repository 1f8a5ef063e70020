"""Account states from the margin ratio, with hysteresis, for a whole book at once.

healthy → warning → margin call → liquidation → bankrupt. A worse state is entered as soon as
the ratio (maintenance margin ÷ margin balance) reaches its threshold; a state is left only when
the ratio is `hysteresis` below that state's threshold, so an account hovering around a line
does not flap (and does not get a margin call e-mail every tick). Bankrupt: the margin balance
is negative, or nil while maintenance margin is still asked.
"""

from dataclasses import dataclass

import numpy as np

# The states' stored values, best to worst (margin.models.AccountState names them for people).
HEALTHY = "healthy"
WARNING = "warning"
MARGIN_CALL = "margin_call"
LIQUIDATION = "liquidation"
BANKRUPT = "bankrupt"
STATES = (HEALTHY, WARNING, MARGIN_CALL, LIQUIDATION, BANKRUPT)
LEVEL = {state: level for level, state in enumerate(STATES)}
BANKRUPT_LEVEL = LEVEL[BANKRUPT]


@dataclass(frozen=True)
class Thresholds:
    warning: float
    margin_call: float
    liquidation: float
    hysteresis: float

    @classmethod
    def of(cls, params) -> "Thresholds":
        return cls(
            warning=float(params.warning_ratio),
            margin_call=float(params.margin_call_ratio),
            liquidation=float(params.liquidation_ratio),
            hysteresis=float(params.hysteresis),
        )


def _level(ratio: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    ratio = np.nan_to_num(ratio, nan=0.0)
    lines = np.array([thresholds.warning, thresholds.margin_call, thresholds.liquidation])
    return np.searchsorted(lines, ratio, side="right")


def next_levels(
    current: np.ndarray,
    *,
    margin_ratio: np.ndarray,
    margin_balance: np.ndarray,
    maintenance_margin: np.ndarray,
    thresholds: Thresholds,
) -> np.ndarray:
    """The new state level (index into STATES) of every account."""
    entered = _level(margin_ratio, thresholds)
    kept = _level(margin_ratio + thresholds.hysteresis, thresholds)
    levels = np.maximum(entered, np.minimum(current, kept))
    bankrupt = (margin_balance < 0) | ((margin_balance <= 0) & (maintenance_margin > 0))
    return np.where(bankrupt, BANKRUPT_LEVEL, levels)


def worst_ratio(book, revaluation, cross_ratio: np.ndarray) -> np.ndarray:
    """Each account's ratio for its state: the worst of its cross pool's (`cross_ratio`, under
    the account's margin scheme) and of each isolated position's own (isolated MM ÷ isolated
    margin + uPnL), so an isolated position nearing its line warns and is called like the cross
    pool (Binance and Bybit notify on either). An isolated position with nothing left counts as
    infinitely far gone."""
    ratio = np.nan_to_num(cross_ratio, nan=0.0).copy()
    rows = book.pos_isolated_rows
    if rows.size:
        isolated = np.nan_to_num(revaluation.isolated_margin_ratio[rows], nan=np.inf)
        np.maximum.at(ratio, book.pos_account[rows], isolated)
    return ratio


def margin_call_amount(book, revaluation, warning: float, maintenance: np.ndarray) -> np.ndarray:
    """What each account must add to get back to the warning level: for the cross pool its
    requirement (`maintenance`, under its margin scheme) ÷ warning − margin balance, for each
    isolated position its own MM ÷ warning − (isolated margin + uPnL); the positive parts summed
    (USD)."""
    needed = np.maximum(maintenance / warning - revaluation.margin_balance, 0.0)
    needed = np.where(maintenance > 0, needed, 0.0)
    rows = book.pos_isolated_rows
    if rows.size:
        equity = book.pos_isolated_margin[rows] + revaluation.unrealized_pnl[rows]
        short = np.maximum(revaluation.maintenance_margin[rows] / warning - equity, 0.0)
        np.add.at(needed, book.pos_account[rows], short)
    return needed

"""Account states from the margin ratio, with hysteresis, for a whole book at once.

healthy → warning → margin call → liquidation → bankrupt. A worse state is entered as soon as
the ratio (maintenance margin ÷ margin balance) reaches its threshold; a state is left only when
the ratio is `hysteresis` below that state's threshold, so an account hovering around a line
does not flap (and does not get a margin call e-mail every tick). Bankrupt: the margin balance
is negative, or nil while maintenance margin is still asked.
"""

from dataclasses import dataclass
from decimal import Decimal

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
    """The margin-ratio lines of a parameter version (the ratio is maintenance margin ÷ margin
    balance) and the hysteresis a state is left by.

    One rule for an account or isolated position that has no ratio (None on the Decimal side,
    NaN in the vector: its margin balance is nil or negative): with maintenance margin to meet
    (`at_risk`) it is past liquidation, with none (nothing held) it is healthy. `next_levels`
    then marks the at-risk ones bankrupt."""

    warning: Decimal
    margin_call: Decimal
    liquidation: Decimal
    hysteresis: Decimal = Decimal(0)

    @classmethod
    def of(cls, params) -> "Thresholds":
        """From anything holding the parameter version's ratios (a version row, a payload)."""
        return cls(
            warning=_decimal(params.warning_ratio),
            margin_call=_decimal(params.margin_call_ratio),
            liquidation=_decimal(params.liquidation_ratio),
            hysteresis=_decimal(getattr(params, "hysteresis", 0)),
        )

    def level(self, ratio: Decimal | None, *, at_risk: bool = True) -> str:
        """The state the ratio alone points to, without hysteresis (the reference of
        `levels`)."""
        if ratio is None:
            return LIQUIDATION if at_risk else HEALTHY
        if ratio >= self.liquidation:
            return LIQUIDATION
        if ratio >= self.margin_call:
            return MARGIN_CALL
        if ratio >= self.warning:
            return WARNING
        return HEALTHY

    def levels(self, ratio: np.ndarray, *, at_risk: np.ndarray) -> np.ndarray:
        """`level` of every ratio, as indices into STATES."""
        ratio = np.where(np.isnan(ratio), np.where(at_risk, np.inf, 0.0), ratio)
        lines = np.array([float(self.warning), float(self.margin_call), float(self.liquidation)])
        return np.searchsorted(lines, ratio, side="right")


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def next_levels(
    current: np.ndarray,
    *,
    margin_ratio: np.ndarray,
    margin_balance: np.ndarray,
    maintenance_margin: np.ndarray,
    thresholds: Thresholds,
) -> np.ndarray:
    """The new state level (index into STATES) of every account."""
    at_risk = maintenance_margin > 0
    entered = thresholds.levels(margin_ratio, at_risk=at_risk)
    kept = thresholds.levels(margin_ratio + float(thresholds.hysteresis), at_risk=at_risk)
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

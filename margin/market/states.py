"""Account states from the margin ratio, with hysteresis, for a whole book at once.

healthy → warning → margin call → liquidation → bankrupt. A worse state is entered as soon as
the ratio (maintenance margin ÷ margin balance) reaches its threshold; a state is left only when
the ratio is `hysteresis` below that state's threshold, so an account hovering around a line
does not flap (and does not get a margin call e-mail every tick). Bankrupt: the margin balance
is negative, or nil while maintenance margin is still asked.
"""

from dataclasses import dataclass

import numpy as np

from margin.models import AccountState

STATES = (
    AccountState.HEALTHY,
    AccountState.WARNING,
    AccountState.MARGIN_CALL,
    AccountState.LIQUIDATION,
    AccountState.BANKRUPT,
)
LEVEL = {state: level for level, state in enumerate(STATES)}
BANKRUPT_LEVEL = LEVEL[AccountState.BANKRUPT]


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

"""What a parameter change would do to the book today: the same positions and prices revalued
under the current and the proposed parameters, compared threshold by threshold."""

from dataclasses import dataclass

import numpy as np

from margin.engine.book_stress import cross_hit
from margin.engine.vector import Revaluation


@dataclass(frozen=True)
class ThresholdImpact:
    name: str
    current_ratio: float
    proposed_ratio: float
    accounts_now: int
    accounts_proposed: int
    newly_crossing: int
    no_longer_crossing: int


@dataclass(frozen=True)
class ParameterImpact:
    accounts: int
    thresholds: tuple[ThresholdImpact, ...]
    maintenance_margin_now: float
    maintenance_margin_proposed: float
    collateral_value_now: float
    collateral_value_proposed: float

    @property
    def maintenance_margin_change(self) -> float:
        return self.maintenance_margin_proposed - self.maintenance_margin_now

    @property
    def collateral_value_change(self) -> float:
        return self.collateral_value_proposed - self.collateral_value_now


def parameter_impact(
    current: Revaluation,
    proposed: Revaluation,
    *,
    current_thresholds: dict[str, float],
    proposed_thresholds: dict[str, float],
) -> ParameterImpact:
    """Per threshold (warning, margin call, liquidation): how many accounts are at or past it
    now and under the proposal, and how many cross it either way."""
    thresholds = []
    for name, now_ratio in current_thresholds.items():
        then_ratio = proposed_thresholds[name]
        before = cross_hit(current, now_ratio)
        after = cross_hit(proposed, then_ratio)
        thresholds.append(
            ThresholdImpact(
                name=name,
                current_ratio=now_ratio,
                proposed_ratio=then_ratio,
                accounts_now=int(before.sum()),
                accounts_proposed=int(after.sum()),
                newly_crossing=int((after & ~before).sum()),
                no_longer_crossing=int((before & ~after).sum()),
            )
        )
    return ParameterImpact(
        accounts=len(current.margin_balance),
        thresholds=tuple(thresholds),
        maintenance_margin_now=float(np.sum(current.account_maintenance_margin)),
        maintenance_margin_proposed=float(np.sum(proposed.account_maintenance_margin)),
        collateral_value_now=float(np.sum(current.collateral_value)),
        collateral_value_proposed=float(np.sum(proposed.collateral_value)),
    )

"""Per account, what the options grid (`margin.engine.options_vector.portfolio_grid`) says in
one line for the desk's queue: the scan risk summed over its underlyings (the grid's IM before
the delta floor) and the scenario binding the largest of them."""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from margin.engine.options import GRID, Scenario
from margin.engine.options_vector import PortfolioGrid


@dataclass(frozen=True)
class AccountScanRisk:
    """Per account: Σ scan risk over its underlyings (0 off the grid), and the label of the
    scenario of its underlying with the largest scan risk ("" where nothing loses)."""

    scan_risk: np.ndarray
    binding_scenario: list[str]


def _percent(share: Decimal) -> str:
    return f"{share * 100:+.0f} %".replace("-", "−")


def scenario_label(underlying: str, scenario: Scenario) -> str:
    """ "BTC −16 % · vol +40 %", a tail scenario with its weight: "BTC −66 % · vol +40 % ×0.24"."""
    label = f"{underlying} {_percent(scenario.spot_shock)} · vol {_percent(scenario.vol_shock)}"
    return label if scenario.weight == 1 else f"{label} ×{scenario.weight.normalize()}"


def account_scan_risk(
    grid: PortfolioGrid, key_names: tuple[str, ...], n_keys: int, n_accounts: int
) -> AccountScanRisk:
    """Sum each account's groups' scan risk and name the binding scenario of its largest one
    (the first in cell order on a tie)."""
    account = grid.cells // n_keys
    scan = np.bincount(account, weights=grid.scan_risk, minlength=n_accounts)[:n_accounts]
    # Groups in descending scan risk, stable: the first row of each account is its largest.
    order = np.lexsort((-grid.scan_risk, account))
    first = order[np.r_[True, account[order][1:] != account[order][:-1]]] if len(order) else order
    labels = [""] * n_accounts
    for group in first.tolist():
        if grid.scan_risk[group] > 0:
            key = int(grid.cells[group] % n_keys)
            name = key_names[key] if key < len(key_names) else str(key)
            labels[int(account[group])] = scenario_label(
                name, GRID[int(grid.worst_scenario[group])]
            )
    return AccountScanRisk(scan_risk=scan.astype(float), binding_scenario=labels)

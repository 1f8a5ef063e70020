"""What the desk's review of one account computes from the engine's view of it: exposures by
asset and the scenario library's simple shocks on this account alone."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from margin.engine.book_stress import stress_book, stressed_revaluation
from margin.engine.option_stress import HeldOptions
from margin.engine.options_vector import option_book_from_accounts
from margin.engine.reference import PositionQuote
from margin.engine.shocks import depeg, uniform_shock
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts

UNIFORM_MOVES = (-0.1, -0.2, -0.3, -0.5, 0.2)


@dataclass(frozen=True)
class Exposure:
    asset: str
    collateral_usd: Decimal
    position_delta_usd: Decimal

    @property
    def net_usd(self) -> Decimal:
        return self.collateral_usd + self.position_delta_usd


@dataclass(frozen=True)
class ScenarioRow:
    """One scenario on this account: what the cross pool gains or loses (the change of its
    margin balance, the figure the queue's stress loss is the worst of), whether the account
    then falls under maintenance and by how much."""

    label: str
    pnl: float
    under_maintenance: bool
    maintenance_shortfall: float
    deficit: float


@dataclass(frozen=True)
class CollateralRow:
    asset: str
    quantity: Decimal
    price: Decimal
    usd_value: Decimal
    collateral_value: Decimal


@dataclass(frozen=True)
class PositionRow:
    """A quoted position with what the desk reads it by: its instrument and size."""

    instrument: str
    quantity: Decimal
    quote: PositionQuote


def exposures_by_asset(account: AccountInput) -> list[Exposure]:
    """What moves with each asset: holdings at their USD value, positions at side × notional."""
    collateral: dict[str, Decimal] = defaultdict(Decimal)
    delta: dict[str, Decimal] = defaultdict(Decimal)
    for line in account.collateral:
        collateral[line.asset] += line.quantity * line.price
    for position in account.positions:
        delta[position.risk_asset] += position.side * position.quantity * position.mark_price
    return [
        Exposure(asset, collateral[asset], delta[asset])
        for asset in sorted(set(collateral) | set(delta))
    ]


def account_scenarios(account: AccountInput, *, moving: set[str]) -> list[ScenarioRow]:
    """The library's uniform shocks of the `moving` assets and a de-peg of every other one
    held, on this account; its options revalued in full at the shocked forward and vol
    (`margin.engine.option_stress`)."""
    if not account.positions and not account.options:
        return []
    book, marks, prices = book_from_accounts([account])
    options = HeldOptions(*option_book_from_accounts([account], book)) if account.options else None
    # The book's assets, then the underlyings only its options are on: a shock moves both.
    names = options.options.key_names if options else book.asset_names
    held = [i for i, name in enumerate(names) if name not in moving]
    rows = [
        (f"Every coin {move:+.0%}", uniform_shock(len(names), move, held=held))
        for move in UNIFORM_MOVES
    ]
    rows += [
        (f"{names[i]} de-pegs −10%", depeg(len(names), i, -0.1)) for i in held if i < book.n_assets
    ]
    now = stressed_revaluation(book, marks, prices, np.zeros(len(names)), held=options)
    balance_now = float(now.margin_balance[0])
    results = []
    for label, moves in rows:
        moves = np.asarray(moves)
        found = stress_book(book, marks, prices, moves, insurance_fund=0.0, held=options)
        shocked = stressed_revaluation(book, marks, prices, moves, held=options)
        results.append(
            ScenarioRow(
                label,
                float(shocked.margin_balance[0]) - balance_now,
                found.accounts_under_maintenance > 0,
                found.maintenance_shortfall,
                found.deficit,
            )
        )
    return results

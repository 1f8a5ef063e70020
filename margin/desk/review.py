"""Everything the desk reads about one account: the engine's quote and liquidation plan,
exposures by asset, the library's simple scenarios on this account alone, and its history."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from margin.desk.selectors import risk_asset_symbols
from margin.engine.book_stress import stress_book
from margin.engine.liquidation import LiquidationPlan, LiquidationStep, liquidation_plan
from margin.engine.reference import (
    AccountQuote,
    PositionQuote,
    collateral_line_value,
    quote_account,
)
from margin.engine.shocks import depeg, shocked_prices, uniform_shock
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts, revalue
from margin.models import AccountEvent, AuditEntry, MarginAccount, MarginSnapshot
from margin.services.account_state import account_state_load
from margin.services.reference import parameters_in_force

UNIFORM_MOVES = (-0.1, -0.2, -0.3, -0.5, 0.2)
HISTORY_POINTS = 60


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


@dataclass(frozen=True)
class AccountReview:
    account: MarginAccount
    engine_input: AccountInput
    quote: AccountQuote
    positions: list[PositionRow]
    plan: LiquidationPlan
    plan_steps: list[tuple[str, LiquidationStep]]
    collateral: list[CollateralRow]
    exposures: list[Exposure]
    scenarios: list[ScenarioRow]
    stress_loss: Decimal | None
    ratio_history: list[float]
    events: list[AccountEvent]
    audit: list[AuditEntry]


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
    held, on this account."""
    if not account.positions:
        return []
    book, marks, prices = book_from_accounts([account])
    names = book.asset_names
    held = [i for i, name in enumerate(names) if name not in moving]
    rows = [
        (f"Every coin {move:+.0%}", uniform_shock(len(names), move, held=held))
        for move in UNIFORM_MOVES
    ]
    rows += [(f"{names[i]} de-pegs −10%", depeg(len(names), i, -0.1)) for i in held]
    balance_now = float(revalue(book, marks, prices, liquidation_prices=False).margin_balance[0])
    results = []
    for label, moves in rows:
        moves = np.asarray(moves)
        found = stress_book(book, marks, prices, moves, insurance_fund=0.0)
        shocked = revalue(
            book, *shocked_prices(book, marks, prices, moves), liquidation_prices=False
        )
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


def account_review(*, account: MarginAccount) -> AccountReview:
    version = parameters_in_force()
    state = account_state_load(account, lock=False)
    engine_input = state.engine_input()
    # By the tick's key: "-tick" would follow RevaluationTick's own newest-first ordering and
    # reverse it, giving the oldest ticks.
    snapshots = list(
        MarginSnapshot.objects.filter(account=account).order_by("-tick_id")[:HISTORY_POINTS]
    )
    quote = quote_account(engine_input)
    plan = liquidation_plan(
        engine_input,
        target_ratio=version.liquidation_target_ratio,
        slippage=version.liquidation_slippage,
    )
    symbols = {p.engine_id: p.instrument for p in state.positions.values()}
    sizes = {p.id: p.quantity for p in engine_input.positions}
    return AccountReview(
        account=account,
        engine_input=engine_input,
        quote=quote,
        positions=[
            PositionRow(symbols.get(row.id, row.id), sizes[row.id], row) for row in quote.positions
        ],
        plan=plan,
        plan_steps=[(symbols.get(step.position_id, step.position_id), step) for step in plan.steps],
        collateral=[
            CollateralRow(
                line.asset,
                line.quantity,
                line.price,
                line.quantity * line.price,
                collateral_line_value(line, engine_input.credit_tier.haircut_scale),
            )
            for line in engine_input.collateral
        ],
        exposures=exposures_by_asset(engine_input),
        scenarios=account_scenarios(engine_input, moving=risk_asset_symbols()),
        stress_loss=snapshots[0].stress_margin if snapshots else None,
        ratio_history=[
            float(ratio)
            for ratio in reversed([s.margin_ratio for s in snapshots])
            if ratio is not None
        ],
        events=list(AccountEvent.objects.filter(account=account)[:20]),
        audit=list(AuditEntry.objects.filter(margin_account=account).select_related("actor")[:30]),
    )

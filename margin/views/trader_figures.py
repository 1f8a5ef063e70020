"""What the trader pages show of one account: the engine's quote on the latest prices, laid out
in rows, with the thresholds, the gauge and the time of the last revaluation.

Every figure comes from the reference engine (`quote_account`) on the ledger's `AccountInput`, so
a page, a preview and an explanation always agree to the digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from margin.engine.reference import (
    AccountQuote,
    CollateralSlice,
    PositionQuote,
    collateral_line_value,
    collateral_slices,
    holding_value,
)
from margin.engine.scheme import (
    PORTFOLIO,
    PortfolioLiquidation,
    Requirement,
    portfolio_liquidation_price,
)
from margin.engine.states import Thresholds
from margin.engine.stress import AccountStress, StressModel, account_stress
from margin.engine.types import AccountInput, CollateralLine, PositionInput
from margin.selectors.accounts import AccountState, PositionState
from margin.selectors.figures import figures_now
from margin.selectors.funding import FundingOutlook, cumulative_funding
from margin.selectors.market import latest_revaluation
from margin.selectors.volatility import stress_model, stress_model_now
from margin.views.trader_gauge import Gauge, ratio_gauge

if TYPE_CHECKING:  # annotations only: a view never touches a model itself
    from margin.models import MarginAccount, ParameterVersion


@dataclass(frozen=True)
class PositionRow:
    position: PositionState
    input: PositionInput
    quote: PositionQuote
    # Under the portfolio scheme, a cross position's liquidation price where the margin
    # balance meets max(tiered MM, stress loss); None under the standard scheme.
    portfolio: PortfolioLiquidation | None = None

    @property
    def liquidation_price(self) -> Decimal | None:
        return self.quote.liquidation_price if self.portfolio is None else self.portfolio.price

    @property
    def liquidation_distance(self) -> Decimal | None:
        """How far the mark may move before liquidation, as a share of the mark."""
        if self.portfolio is None:
            return self.quote.liquidation_distance
        if self.portfolio.price is None:
            return None
        mark = self.input.mark_price
        return abs(mark - self.portfolio.price) / mark

    @property
    def symbol(self) -> str:
        return self.position.instrument

    @property
    def explain_prefix(self) -> str:
        return f"positions.{self.input.id}"

    @property
    def is_isolated(self) -> bool:
        return self.input.is_isolated

    @property
    def margin(self) -> Decimal:
        """The margin behind the position: its isolated margin, or its initial margin in cross."""
        return self.quote.isolated_margin if self.is_isolated else self.quote.initial_margin

    @property
    def distance_class(self) -> str:
        """Red within 5% of liquidation, amber within 15% (Bybit's colouring of the same)."""
        distance = self.liquidation_distance
        if distance is None:
            return ""
        if distance < Decimal("0.05"):
            return "neg"
        return "warn" if distance < Decimal("0.15") else ""


@dataclass(frozen=True)
class CollateralRow:
    line: CollateralLine
    usd_value: Decimal
    collateral_value: Decimal
    slices: tuple[CollateralSlice, ...]

    @property
    def applied_ratio(self) -> Decimal | None:
        """The blended collateral ratio over all the tiers the holding reaches."""
        return None if self.usd_value <= 0 else self.collateral_value / self.usd_value


@dataclass(frozen=True)
class Revaluation:
    """When the revaluation job last quoted this account, whether that is too long ago, and
    the stress loss it found (at the published volatility floors before there is history)."""

    at: datetime | None
    stale: bool
    stress_loss: Decimal | None = None
    # {symbol: why} of the prices the tick would not liquidate on (stale or uncertain).
    price_doubts: dict[str, str] = field(default_factory=dict)
    # The tick's frozen volatility estimate (`RevaluationTick.volatility`): the stress model's.
    volatility: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PositionFunding:
    outlook: FundingOutlook | None  # None for a dated future
    cumulative: Decimal


def position_funding(
    rows: tuple[PositionRow, ...], outlooks: dict[str, FundingOutlook]
) -> dict[str, PositionFunding]:
    ids = {row.symbol: row.position.position_id for row in rows}
    paid = cumulative_funding(ids.values())
    return {
        symbol: PositionFunding(outlook=outlooks.get(symbol), cumulative=paid[pk])
        for symbol, pk in ids.items()
    }


@dataclass(frozen=True)
class AccountFigures:
    account: MarginAccount
    state: AccountState
    input: AccountInput
    quote: AccountQuote
    thresholds: Thresholds
    gauge: Gauge
    positions: tuple[PositionRow, ...]
    collateral: tuple[CollateralRow, ...]
    # The stress scenarios' reach in the parameters in force: k sigmas over a horizon.
    stress_k_sigma: Decimal
    stress_horizon_days: Decimal
    # The requirement under the account's margin scheme, and what the ratio gauge reads.
    requirement: Requirement
    margin_call_ratio: Decimal
    parameters: ParameterVersion
    # Symbol → the funding outlook of every active perpetual (`FiguresNow.funding`).
    funding_outlooks: dict[str, FundingOutlook]

    @cached_property
    def revaluation(self) -> Revaluation:
        """Read on first use: only the overview shows it, and the positions and collateral
        fragments poll every 2 s without it."""
        return _revaluation(self.account)

    @cached_property
    def funding(self) -> dict[str, PositionFunding]:
        """Symbol → the position's funding (next time, predicted and last rate, what it has
        paid or received so far); read on first use, by the positions fragment."""
        return position_funding(self.positions, self.funding_outlooks)

    @property
    def price_doubts(self) -> list[tuple[str, str]]:
        """(symbol, why) of the prices this account rests on that its last revaluation would
        not liquidate on: the reason a due account is not liquidated."""
        mine = {line.asset for line in self.input.collateral} | {
            symbol
            for position in self.state.positions.values()
            if position.quantity != 0
            for symbol in (position.instrument, position.underlying)
        }
        doubts = self.revaluation.price_doubts
        return [(symbol, doubts[symbol]) for symbol in sorted(mine & set(doubts))]

    @cached_property
    def stress_model(self) -> StressModel:
        """The stress model over the assets this account touches: the volatility estimate of
        the tick that last revalued it (the published floors where there is none) under the
        parameters in force."""
        names = {line.asset for line in self.input.collateral}
        names |= {p.risk_asset for p in self.input.positions}
        estimate = self.revaluation.volatility
        # The market read's terms are those of the parameters in force: no query to find them.
        return stress_model(self.parameters, estimate, tuple(sorted(names)), terms=self.state.terms)

    @cached_property
    def stress(self) -> AccountStress:
        """The cross pool's stress loss and risk requirement now, on the stress model of now:
        the figures the explain drawer takes apart. The desk's queue shows the last
        revaluation's."""
        return account_stress(self.input, self.stress_model, quote=self.quote)


def _revaluation(account: MarginAccount) -> Revaluation:
    latest = latest_revaluation(account.pk)
    if latest is None:
        return Revaluation(at=None, stale=True)
    # The tick's prices were frozen when it started: that is the time its figures are of.
    return Revaluation(
        at=latest.at,
        stale=latest.stale,
        stress_loss=latest.stress_margin,
        price_doubts=latest.price_doubts,
        volatility=latest.volatility,
    )


def collateral_rows(account_input: AccountInput) -> tuple[CollateralRow, ...]:
    scale = account_input.credit_tier.haircut_scale
    return tuple(
        CollateralRow(
            line=line,
            usd_value=holding_value(line),
            collateral_value=collateral_line_value(line, scale),
            slices=collateral_slices(line, scale),
        )
        for line in account_input.collateral
    )


def position_rows(
    state: AccountState, account_input: AccountInput, quote: AccountQuote
) -> tuple[PositionRow, ...]:
    """The input's positions (the state's, possibly with shocked marks) beside their quotes."""
    by_engine_id = {position.engine_id: position for position in state.positions.values()}
    return tuple(
        PositionRow(position=by_engine_id[item.id], input=item, quote=row)
        for item, row in zip(account_input.positions, quote.positions, strict=True)
    )


def account_figures(account: MarginAccount) -> AccountFigures:
    """Every figure of the account's pages; a constant number of queries whatever it holds."""
    now = figures_now(account)
    state, account_input, quote = now.state, now.input, now.quote
    requirement = now.requirement
    version = now.parameters
    thresholds = Thresholds.of(version)
    rows = position_rows(state, account_input, quote)
    if requirement.scheme == PORTFOLIO:
        # The model the requirement itself used (`AccountState.requirement`).
        model = stress_model_now()
        rows = tuple(
            row
            if row.is_isolated
            else replace(
                row,
                portfolio=portfolio_liquidation_price(
                    account_input, model, row.input, row.quote.liquidation_price
                ),
            )
            for row in rows
        )
    return AccountFigures(
        account=account,
        input=account_input,
        quote=quote,
        thresholds=thresholds,
        gauge=ratio_gauge(
            requirement.margin_ratio, thresholds, at_risk=requirement.maintenance > 0
        ),
        requirement=requirement,
        margin_call_ratio=version.margin_call_ratio,
        state=state,
        positions=rows,
        collateral=collateral_rows(account_input),
        stress_k_sigma=version.stress_k_sigma,
        stress_horizon_days=version.stress_horizon_days,
        parameters=version,
        funding_outlooks=now.funding,
    )

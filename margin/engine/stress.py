"""Stress margin: the cross pool's worst loss under a k-sigma market move, beside its tiered
maintenance margin.

Volatility and correlation come from an EWMA covariance of log returns (RiskMetrics) at a
horizon that suits them (the revaluation job aggregates the index history to hourly returns and
scales to a day), with a published floor per asset: an asset without history, or one that did
not move, is held at its floor, never at zero (fail closed).

The worst loss of a linear book over every move within k standard deviations (the ellipsoid
δᵀΣ⁻¹δ ≤ k²·horizon) is closed form: k·√horizon·√(eᵀΣe) over the account's exposure vector e,
reached at δ* = −k√h·Σe/√(eᵀΣe). A hedge gets exactly the credit its correlation earns (long
and short 1M of two coins at 3 % a day and ρ 0.8: 3·30,000·√0.4 = 56,921, not a one-leg 3σ
move). An asset whose correlation with the others is unknown (no history, or flat) is taken as
perfectly correlated in the losing direction: its term |e_j|·k√h·σ_j adds to the root, which is
the supremum over every correlation it could have (Minkowski).

Beside the closed form stand the named single-asset moves: each asset up and down k σ (a log
move) with every correlated asset following by its regression on it (E[r_j | r_i] =
ρ_ij σ_j/σ_i · r_i). Each lies on the same ellipsoid, so for a linear book it can exceed the
closed form only through the log-normal convexity of an up move (a short's loss), and it names
the move a trader can picture. The desk's library (uniform, crash, de-peg, replay) runs over the
whole book apart (`margin.desk`).

An account's risk requirement is the larger of its tiered maintenance margin and its worst loss
(Deribit's portfolio margin and Binance's portfolio-margin stress add-on take the same max; the
scheme that charges it is `margin.engine.scheme`).

A pool that settles in a coin (USDT) is measured in that coin (`AccountInput.in_settlement_coin`):
its exposures are in the coin, and a named move, stated in USD, is restated in it, every price
over the coin's own, (1 + m) / (1 + m_coin) − 1, the coin itself not moving (as the desk's
`shocks.shocked_prices` moves the marks quoted in it). So a USDT de-peg raises every USD-priced
asset in USDT: a long gains, a short loses, and the pool's USDT counts 1:1 throughout.

Scenarios are linear in the exposures: a position moves with its underlying asset
(side × quantity × mark × shock), a holding with its own (collateral value × shock, the tier
split held as it is today). Isolated positions stay out: their loss is bounded by the isolated
margin they already carry.

Options are not linear: under each named move an account's options are revalued in full with
Black-76 at the shocked forward and a vol shock (`margin.engine.option_stress`: a fall, or a
rise of 16 % or more, lifts implied vol by the grid's +40 % scaled by time to expiry, a smaller
rise lowers it by 22 %; Deribit's portfolio margin shocks price and vol together), so a short
put loses its whole convex loss, not delta × move. The closed form, a bound for a linear book,
takes them at their delta (side × quantity × Black-76 delta × forward). An option on an
underlying the model does not know holds still.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, partial

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.option_stress import (
    LARGE_RISE,
    HeldOptions,
    option_delta_exposures,
    option_scenario_losses,
)
from margin.engine.options import VOL_DOWN, VOL_UP, Scenario, option_quote, option_value_change
from margin.engine.parallel import run_tasks
from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, collateral_line_value, quote_account
from margin.engine.types import ONE, ZERO, AccountInput
from margin.engine.vector import Book, Revaluation, revalue, sum_by

RISKMETRICS_LAMBDA = 0.94
"""RiskMetrics' decay for daily returns (J.P. Morgan/Reuters, RiskMetrics Technical Document,
1996)."""
DEFAULT_SIGMAS = 3.0
"""k: how many standard deviations a scenario moves."""
DEFAULT_HORIZON = 1.0
"""Horizon in days: σ (per day) grows with √horizon."""
COVARIANCE_LOSS = -2
"""`worst_scenario` when the closed-form covariance loss binds (−1: nothing loses)."""
# Scenario losses are formed a block of accounts at a time: memory stays bounded and each
# block stays in cache. A block's product (accounts × assets × scenarios) is kept under this
# many multiply-adds so that OpenBLAS runs it on the calling thread: its own threads would
# compete with ours for the same cores, and they spin while they wait.
SERIAL_PRODUCT_WORK = 1 << 19
BLOCKS_PER_TASK = 16


def ewma_covariance(
    prices: np.ndarray, lam: float = RISKMETRICS_LAMBDA
) -> tuple[np.ndarray, np.ndarray]:
    """RiskMetrics EWMA covariance of log returns (zero mean) from a price history
    (T periods × n assets, oldest first): Σ = Σ_t w_t r_t r_tᵀ with w_t ∝ λ^(age of r_t),
    normalised to 1 over the returns at hand. Returns (σ per asset, Σ), per period."""
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 2 or prices.shape[0] < 2:
        raise EngineInputError("prices", "must be a T × n_assets history with at least 2 periods")
    if not np.all(np.isfinite(prices)) or not np.all(prices > 0):
        raise EngineInputError("prices", "must be finite and positive")
    if not 0 < lam < 1:
        raise EngineInputError("lam", f"must lie in (0, 1), got {lam}")
    returns = np.diff(np.log(prices), axis=0)
    weights = lam ** np.arange(len(returns) - 1, -1, -1, dtype=np.float64)
    weights /= weights.sum()
    covariance = (returns * weights[:, None]).T @ returns
    return np.sqrt(np.diag(covariance)), covariance


def half_life(lam: float) -> float:
    """Periods after which an EWMA weight has halved: ln ½ / ln λ (0.94: 11.2 periods)."""
    if not 0 < lam < 1:
        raise EngineInputError("lam", f"must lie in (0, 1), got {lam}")
    return math.log(0.5) / math.log(lam)


@dataclass(frozen=True)
class StressModel:
    """What a stress margin is computed from: per asset its σ per day (floored), the daily
    covariance among the assets whose correlation is known (`correlated`; the others have only
    their variance on the diagonal), k and the horizon in days."""

    asset_names: tuple[str, ...]
    vol: np.ndarray
    covariance: np.ndarray
    correlated: np.ndarray
    k: float = DEFAULT_SIGMAS
    horizon_days: float = DEFAULT_HORIZON

    def __post_init__(self) -> None:
        n = len(self.asset_names)
        if self.vol.shape != (n,) or self.correlated.shape != (n,):
            raise EngineInputError("model.vol", f"must hold one σ per asset ({n})")
        if self.covariance.shape != (n, n):
            raise EngineInputError("model.covariance", f"must be {n} × {n}")
        if not np.all(np.isfinite(self.vol)) or np.any(self.vol <= 0):
            raise EngineInputError("model.vol", "every σ must be positive: floors fail closed")
        if not (self.k > 0 and self.horizon_days > 0):
            raise EngineInputError("model", "k and the horizon must be positive")

    @classmethod
    def build(
        cls,
        asset_names: Sequence[str],
        floors: np.ndarray,
        *,
        estimated_vol: np.ndarray | None = None,
        estimated_covariance: np.ndarray | None = None,
        k: float = DEFAULT_SIGMAS,
        horizon_days: float = DEFAULT_HORIZON,
    ) -> "StressModel":
        """The model from an estimate (daily σ and Σ, nan or absent where an asset has no
        history) and the published floors: σ = max(estimate, floor), correlations kept as
        estimated. An asset with no estimate or a zero one (it never moved) stands at its floor
        with its correlation unknown."""
        floors = np.asarray(floors, dtype=np.float64)
        n = len(asset_names)
        if floors.shape != (n,) or not np.all(np.isfinite(floors)) or np.any(floors <= 0):
            raise EngineInputError("floors", f"must hold a positive σ floor per asset ({n})")
        if estimated_vol is None:
            estimated_vol, estimated_covariance = np.full(n, np.nan), np.full((n, n), np.nan)
        estimated_vol = np.asarray(estimated_vol, dtype=np.float64)
        estimated_covariance = np.asarray(estimated_covariance, dtype=np.float64)
        if estimated_vol.shape != (n,) or estimated_covariance.shape != (n, n):
            raise EngineInputError("estimate", f"must cover the {n} assets")
        correlated = np.isfinite(estimated_vol) & (estimated_vol > 0)
        vol = np.where(correlated, np.maximum(np.nan_to_num(estimated_vol), floors), floors)
        safe = np.where(correlated, estimated_vol, 1.0)
        correlation = np.nan_to_num(estimated_covariance) / np.outer(safe, safe)
        correlation = np.clip(correlation, -1.0, 1.0) * np.outer(correlated, correlated)
        np.fill_diagonal(correlation, 1.0)
        return cls(
            asset_names=tuple(asset_names),
            vol=vol,
            covariance=correlation * np.outer(vol, vol),
            correlated=correlated,
            k=float(k),
            horizon_days=float(horizon_days),
        )

    @property
    def reach(self) -> float:
        """k·√horizon: how far, in daily standard deviations, a stress move goes."""
        return self.k * math.sqrt(self.horizon_days)

    @cached_property
    def correlated_covariance(self) -> np.ndarray:
        """Σ among the correlated assets, zero in every row and column of the others."""
        mask = np.outer(self.correlated, self.correlated)
        return np.where(mask, self.covariance, 0.0)

    @cached_property
    def scenarios(self) -> "ScenarioSet":
        """Each asset alone up and down by k·√h·σ (a log move), every correlated asset
        following by its regression on it: the named single-asset moves."""
        n = len(self.asset_names)
        betas = np.eye(n)
        lead = np.flatnonzero(self.correlated)
        # Column i: how each asset moves per unit move of asset i (Σ_ji / σ_i²).
        betas[np.ix_(lead, lead)] = self.covariance[np.ix_(lead, lead)] / self.vol[lead] ** 2
        up = (self.reach * self.vol)[:, None] * betas.T
        log_moves = np.stack([up, -up], axis=1).reshape(2 * n, n)
        names = [f"{a} {sign}{self.k:g}σ" for a in self.asset_names for sign in ("+", "−")]
        return ScenarioSet(
            price_shocks=np.expm1(log_moves),
            vol_shocks=np.zeros_like(log_moves),
            names=tuple(names),
            asset_names=self.asset_names,
        )

    def aligned(self, asset_names: Sequence[str], floors: Mapping[str, float]) -> "StressModel":
        """The model over `asset_names` (a book's order): an asset it lacks stands at its
        floor from `floors`, correlation unknown."""
        column = {name: n for n, name in enumerate(self.asset_names)}
        missing = [name for name in asset_names if name not in column and name not in floors]
        if missing:
            raise EngineInputError("floors", f"no σ floor for {', '.join(missing)}")
        rows = np.array([column.get(name, -1) for name in asset_names], dtype=np.int64)
        known = rows >= 0
        vol = np.where(known, self.vol[rows], [floors.get(n, 0.0) for n in asset_names])
        correlated = known & self.correlated[rows]
        covariance = self.covariance[np.ix_(rows, rows)] * np.outer(correlated, correlated)
        np.fill_diagonal(covariance, vol**2)
        return StressModel(
            asset_names=tuple(asset_names),
            vol=vol,
            covariance=covariance,
            correlated=correlated,
            k=self.k,
            horizon_days=self.horizon_days,
        )


@dataclass(frozen=True)
class ScenarioSet:
    """S scenarios over n assets. `price_shocks[s, a]` is a relative move (shocked price =
    price × (1 + shock)); `vol_shocks[s, a]` the relative move of the asset's implied
    volatility, which linear instruments ignore and options will read (Deribit's portfolio
    margin grids price × volatility the same way). `names` labels each scenario."""

    price_shocks: np.ndarray
    vol_shocks: np.ndarray
    names: tuple[str, ...]
    asset_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.price_shocks.ndim != 2 or self.price_shocks.shape != self.vol_shocks.shape:
            raise EngineInputError(
                "scenarios.vol_shocks", "must have the shape of price_shocks (S × n_assets)"
            )
        if len(self.names) != len(self.price_shocks):
            raise EngineInputError(
                "scenarios.names", f"must name each of the {len(self.price_shocks)} scenarios"
            )
        if self.asset_names and len(self.asset_names) != self.price_shocks.shape[1]:
            raise EngineInputError("scenarios.asset_names", "must name each asset column")
        if np.any(self.price_shocks <= -1):
            raise EngineInputError(
                "scenarios.price_shocks",
                "a relative move must stay above -1 (prices stay positive)",
            )

    @property
    def n_scenarios(self) -> int:
        return len(self.price_shocks)


@dataclass(frozen=True)
class StressResult:
    """Per account: tiered MM of the cross pool, the closed-form covariance loss, the worst
    loss (≥ 0: the larger of that and the worst named scenario), what gives it (an index into
    the model's scenarios, COVARIANCE_LOSS, or −1 when nothing loses) and the risk requirement,
    the larger of MM and the worst loss."""

    maintenance_margin: np.ndarray
    covariance_loss: np.ndarray
    worst_loss: np.ndarray
    worst_scenario: np.ndarray
    risk_requirement: np.ndarray


def account_exposures(book: Book, revaluation: Revaluation) -> np.ndarray:
    """Each account's USD exposure to each asset (accounts × assets): cross positions by their
    underlying (side × notional), holdings by their collateral value."""
    n_assets = book.n_assets
    cells = book.n_accounts * n_assets
    # Isolated positions land in one extra row past the last account, which sum_by drops.
    exposure = sum_by(book.pos_exposure_cell, book.pos_side * revaluation.notional, cells)
    exposure += sum_by(book.line_exposure_cell, revaluation.collateral_line_value, cells)
    return exposure.reshape(book.n_accounts, n_assets)


def covariance_losses(exposures: np.ndarray, model: StressModel) -> np.ndarray:
    """k·√h·(√(eᵀΣe) over the correlated assets + Σ |e_j|·σ_j over the others), per row of
    `exposures` (accounts × the model's assets)."""
    return _covariance_losses(exposures, *_covariance_terms(model))


def _covariance_terms(model: StressModel) -> tuple[np.ndarray, np.ndarray, float]:
    return model.correlated_covariance, np.where(model.correlated, 0.0, model.vol), model.reach


def _covariance_losses(
    exposures: np.ndarray, covariance: np.ndarray, apart_vol: np.ndarray, reach: float
) -> np.ndarray:
    quadratic = ((exposures @ covariance) * exposures).sum(axis=1)
    return reach * (np.sqrt(np.maximum(quadratic, 0.0)) + np.abs(exposures) @ apart_vol)


@dataclass(frozen=True)
class _Outputs:
    covariance_loss: np.ndarray
    named_loss: np.ndarray
    named_scenario: np.ndarray


def _stress_of_blocks(
    exposures: np.ndarray,
    covariance_terms: tuple[np.ndarray, np.ndarray, float],
    negated_shocks: np.ndarray,
    accounts: range,
    out: _Outputs,
    options: "_OptionTerms | None" = None,
) -> None:
    """Covariance loss, worst named loss and its scenario for a range of accounts, one block
    (`accounts.step`) at a time; `negated_shocks` is −price_shocksᵀ, so that a product is a
    loss; `options` adds the options' delta to the closed form and their revalued loss to each
    named move. Small blocks keep every product on the calling thread (see
    SERIAL_PRODUCT_WORK)."""
    for start in accounts:
        rows = slice(start, min(start + accounts.step, accounts.stop))
        block = exposures[rows]
        closed_form = block if options is None else block + options.delta_exposures[rows]
        out.covariance_loss[rows] = _covariance_losses(closed_form, *covariance_terms)
        if not negated_shocks.shape[1]:
            continue  # a book without assets has no named moves
        losses = block @ negated_shocks
        if options is not None:
            losses += options.scenario_losses[rows]
        worst = losses.argmax(axis=1)
        out.named_scenario[rows] = worst
        # Row r's worst loss sits at r × S + worst[r] of the flattened block.
        worst += np.arange(0, losses.size, losses.shape[1])
        out.named_loss[rows] = losses.ravel()[worst]


def in_settlement_coin(price_shocks: np.ndarray, settlement: int) -> np.ndarray:
    """Moves in USD (scenarios × assets) restated in the settlement coin (column `settlement`,
    −1 for none): (1 + m) / (1 + m_coin) − 1 for every asset, 0 for the coin."""
    if settlement < 0:
        return price_shocks
    return (1.0 + price_shocks) / (1.0 + price_shocks[:, [settlement]]) - 1.0


@dataclass(frozen=True)
class _OptionTerms:
    """Accounts × assets: the options at their delta; accounts × scenarios: their loss."""

    delta_exposures: np.ndarray
    scenario_losses: np.ndarray


def _stress_losses(
    exposures: np.ndarray,
    model: StressModel,
    workers: int | None,
    settlement: int = -1,
    options: _OptionTerms | None = None,
) -> _Outputs:
    n_accounts, n_assets = exposures.shape
    scenarios = model.scenarios
    out = _Outputs(
        covariance_loss=np.zeros(n_accounts),
        named_loss=np.zeros(n_accounts),
        named_scenario=np.full(n_accounts, -1, dtype=np.int64),
    )
    # The covariance product counts as n_assets more scenarios.
    width = max(1, (scenarios.n_scenarios + n_assets) * n_assets)
    block = max(1, SERIAL_PRODUCT_WORK // width)
    # A few blocks per task: one task per block would cost more to hand out than to run.
    per_task = block * BLOCKS_PER_TASK
    negated_shocks = np.ascontiguousarray(-in_settlement_coin(scenarios.price_shocks, settlement).T)
    run_tasks(
        [
            partial(
                _stress_of_blocks,
                exposures,
                _covariance_terms(model),
                negated_shocks,
                range(start, min(start + per_task, n_accounts), block),
                out,
                options,
            )
            for start in range(0, n_accounts, per_task)
        ],
        workers,
    )
    return out


def stress_margin(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    model: StressModel,
    *,
    revaluation: Revaluation | None = None,
    workers: int | None = None,
    held: HeldOptions | None = None,
) -> StressResult:
    """Worst loss (closed form beside the named single-asset moves) and risk requirement =
    max(tiered MM, worst loss) of every account; `model` in the book's asset order. Pass the
    revaluation at these prices when you have it; it is computed otherwise; `held`, the book's
    options, revalued in full under each named move. The accounts × scenarios losses are
    formed block by block (bounded memory), on `workers` threads (default: one per core)."""
    if model.asset_names != book.asset_names:
        raise EngineInputError("model.asset_names", "must be the book's assets, in its order")
    if revaluation is None:
        revaluation = revalue(book, marks, asset_prices, workers=workers, liquidation_prices=False)
    exposures = account_exposures(book, revaluation)
    options = None
    if held is not None and len(held.options.positions):
        options = _OptionTerms(
            delta_exposures=option_delta_exposures(held, book),
            scenario_losses=option_scenario_losses(
                held, book, model.scenarios.price_shocks, workers
            ),
        )
    losses = _stress_losses(exposures, model, workers, book.settlement_asset, options)
    covariance = losses.covariance_loss
    named_binds = losses.named_loss > covariance
    worst_loss = np.where(named_binds, losses.named_loss, covariance)
    worst_scenario = np.where(named_binds, losses.named_scenario, COVARIANCE_LOSS)
    losing = worst_loss > 0
    worst_scenario[~losing] = -1
    worst_loss[~losing] = 0.0
    maintenance = revaluation.account_maintenance_margin
    return StressResult(
        maintenance_margin=maintenance,
        covariance_loss=covariance,
        worst_loss=worst_loss,
        worst_scenario=worst_scenario,
        risk_requirement=np.maximum(maintenance, worst_loss),
    )


@dataclass(frozen=True)
class AccountStress:
    """The Decimal reference's `stress_margin` of one account: its closed-form covariance loss,
    its loss under each named scenario, the worst (≥ 0) and what gives it (COVARIANCE_LOSS, a
    scenario's index, None when nothing loses), its tiered MM and its risk requirement, the
    larger of the two."""

    covariance_loss: Decimal
    scenario_losses: tuple[Decimal, ...]
    worst_loss: Decimal
    worst_scenario: int | None
    maintenance_margin: Decimal
    risk_requirement: Decimal


def decimal_shocks(scenarios: ScenarioSet) -> tuple[dict[str, Decimal], ...]:
    """Each scenario's relative price moves by asset name, each float taken exactly."""
    return tuple(
        {
            asset: Decimal(float(move))
            for asset, move in zip(scenarios.asset_names, row, strict=True)
        }
        for row in scenarios.price_shocks
    )


@exact
def asset_exposures(account: AccountInput, quote: AccountQuote) -> dict[str, Decimal]:
    """The account's exposure to each asset it touches, in its settlement coin (USD without
    one): Σ side × notional of its cross positions by underlying, plus Σ collateral value of
    its holdings by asset."""
    account = account.in_settlement_coin()
    exposures: dict[str, Decimal] = {}
    for position, row in zip(account.positions, quote.positions, strict=True):
        if not position.is_isolated:
            asset = position.risk_asset
            exposures[asset] = exposures.get(asset, ZERO) + position.side * row.notional
    for line in account.collateral:
        value = collateral_line_value(line, account.credit_tier.haircut_scale)
        exposures[line.asset] = exposures.get(line.asset, ZERO) + value
    return exposures


@exact
def shocks_in_settlement_coin(
    moves: Mapping[str, Decimal], settlement: str | None, assets: Sequence[str]
) -> dict[str, Decimal]:
    """One scenario's USD moves restated in the settlement coin for `assets`:
    (1 + m) / (1 + m_coin) − 1 (an asset absent from `moves` does not move in USD), the coin
    itself 0; unchanged without a settlement coin."""
    if settlement is None:
        return dict(moves)
    coin = ONE + moves.get(settlement, ZERO)
    return {
        asset: ZERO if asset == settlement else (ONE + moves.get(asset, ZERO)) / coin - ONE
        for asset in assets
    }


@exact
def scenario_loss(exposures: Mapping[str, Decimal], price_shocks: Mapping[str, Decimal]) -> Decimal:
    """Loss under one scenario (`price_shocks` by asset name, absent assets unmoved):
    −Σ exposure × shock of its asset."""
    return -sum(
        (exposure * price_shocks.get(asset, ZERO) for asset, exposure in exposures.items()), ZERO
    )


@exact
def covariance_loss(exposures: Mapping[str, Decimal], model: StressModel) -> Decimal:
    """k·√horizon × (√(Σ_i Σ_j e_i Σ_ij e_j) over the assets of known correlation
    + Σ |e_j| σ_j over the others): the worst loss of a linear book over every move within k
    standard deviations, each float of the model taken exactly. An exposure to an asset the
    model lacks is refused: no σ, no stress figure (fail closed)."""
    column = {name: n for n, name in enumerate(model.asset_names)}
    unknown = sorted(set(exposures) - set(column))
    if unknown:
        raise EngineInputError("model.asset_names", f"no σ for {', '.join(unknown)}")
    correlated, apart = [], ZERO
    for asset, exposure in exposures.items():
        n = column[asset]
        if model.correlated[n]:
            correlated.append((n, exposure))
        else:
            apart += abs(exposure) * Decimal(float(model.vol[n]))
    quadratic = sum(
        (
            e_i * Decimal(float(model.covariance[i, j])) * e_j
            for i, e_i in correlated
            for j, e_j in correlated
        ),
        ZERO,
    )
    reach = Decimal(model.k) * Decimal(model.horizon_days).sqrt()
    return reach * (max(quadratic, ZERO).sqrt() + apart)


def scenario_vol_shock(move: Decimal) -> Decimal:
    """The vol shock an option takes from its underlying's USD move, as
    `option_stress.scenario_vol_shocks` gives it: none unmoved, +40 % on a fall or a rise of
    16 % or more, −22 % on a smaller rise."""
    if move == 0:
        return ZERO
    return VOL_UP if move < 0 or move >= Decimal(LARGE_RISE) else VOL_DOWN


@exact
def account_stress(
    account: AccountInput,
    model: StressModel,
    *,
    shocks: Sequence[Mapping[str, Decimal]] | None = None,
    quote: AccountQuote | None = None,
) -> AccountStress:
    """Decimal reference of `stress_margin` for one account: worst loss = max(0, covariance
    loss, the loss of each named scenario (`shocks`, the model's own by default)), risk
    requirement = max(tiered MM, worst loss); the moves restated in the account's settlement
    coin. Pass the account's quote when you have it."""
    quote = quote_account(account) if quote is None else quote
    shocks = decimal_shocks(model.scenarios) if shocks is None else shocks
    exposures = asset_exposures(account, quote)
    options = [o for o in account.options if o.underlying in model.asset_names]
    values = {o.id: option_quote(o) for o in options}
    closed_form_exposures = dict(exposures)
    for o in options:
        delta = values[o.id].position_delta * o.underlying_price
        closed_form_exposures[o.underlying] = closed_form_exposures.get(o.underlying, ZERO) + delta
    closed_form = covariance_loss(closed_form_exposures, model)
    assets = sorted(set(exposures) | {o.underlying for o in options})
    losses = []
    for moves in shocks:
        coin_moves = shocks_in_settlement_coin(moves, account.settlement_asset, assets)
        loss = scenario_loss(exposures, coin_moves)
        for o in options:
            scenario = Scenario(
                spot_shock=coin_moves.get(o.underlying, moves.get(o.underlying, ZERO)),
                vol_shock=scenario_vol_shock(moves.get(o.underlying, ZERO)),
                weight=ONE,
            )
            loss -= option_value_change(o, scenario, values[o.id].mark_price)
        losses.append(loss)
    losses = tuple(losses)
    worst_loss, worst_scenario = ZERO, None
    if closed_form > worst_loss:
        worst_loss, worst_scenario = closed_form, COVARIANCE_LOSS
    for index, loss in enumerate(losses):
        if loss > worst_loss:
            worst_loss, worst_scenario = loss, index
    return AccountStress(
        covariance_loss=closed_form,
        scenario_losses=losses,
        worst_loss=worst_loss,
        worst_scenario=worst_scenario,
        maintenance_margin=quote.maintenance_margin,
        risk_requirement=max(quote.maintenance_margin, worst_loss),
    )

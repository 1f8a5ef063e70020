"""Stress margin: the cross pool's loss under price scenarios, beside its tiered maintenance
margin.

Volatility and correlation come from an EWMA covariance of log returns (RiskMetrics). The
scenario set moves every asset alone by ± k·σ·√horizon and moves all assets together along
directions drawn from the covariance, at the same k-sigma distance. An account's risk
requirement is the larger of its tiered maintenance margin and its worst scenario loss (the
idea of Deribit's portfolio margin and Binance's portfolio-margin stress add-on).

Scenarios are linear in the exposures: a position moves with its underlying asset
(side × quantity × mark × shock), a holding with its own (collateral value × shock, the tier
split held as it is today). Isolated positions stay out: their loss is bounded by the isolated
margin they already carry.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.parallel import run_tasks
from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, collateral_line_value, quote_account
from margin.engine.types import ZERO, AccountInput
from margin.engine.vector import Book, Revaluation, revalue, sum_by

RISKMETRICS_LAMBDA = 0.94
"""RiskMetrics' decay for daily returns (J.P. Morgan/Reuters, RiskMetrics Technical Document,
1996)."""
DEFAULT_SIGMAS = 3.0
"""k: how many standard deviations a scenario moves."""
DEFAULT_HORIZON = 1.0
"""Horizon in periods of the price history (days for daily closes): σ grows with √horizon."""
DEFAULT_CORRELATED = 50
"""Directions drawn from the covariance; each is also taken mirrored: twice this many joint
scenarios."""
DEFAULT_SEED = 0
"""Seed of the draws: the same inputs give the same scenarios."""
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


def cholesky_with_jitter(covariance: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a covariance; one that is only positive semi-definite (an asset
    without moves, two that move as one) gets a growing multiple of its mean variance added to
    the diagonal until it factors."""
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        pass
    size = len(covariance)
    mean_variance = np.trace(covariance) / size if size else 0.0
    scale = mean_variance if mean_variance > 0 else 1.0
    for exponent in range(-12, 0):
        try:
            return np.linalg.cholesky(covariance + (scale * 10.0**exponent) * np.eye(size))
        except np.linalg.LinAlgError:
            continue
    raise EngineInputError(
        "covariance", "is not a covariance matrix: it does not factor even with jitter"
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


def build_scenarios(
    vol: np.ndarray,
    cov: np.ndarray,
    *,
    k: float = DEFAULT_SIGMAS,
    horizon: float = DEFAULT_HORIZON,
    n_correlated: int = DEFAULT_CORRELATED,
    seed: int = DEFAULT_SEED,
    asset_names: Sequence[str] = (),
) -> ScenarioSet:
    """Each asset alone up and down by k·σ·√horizon (a log move), then `n_correlated` joint
    moves and their mirrors: directions u drawn uniformly on the unit sphere (seeded), each
    mapped through the Cholesky factor L of the covariance to the log move k·√horizon·L·u,
    which lies exactly k sigmas away in the covariance's own metric."""
    vol, cov = np.asarray(vol, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    n_assets = len(vol)
    if cov.shape != (n_assets, n_assets):
        raise EngineInputError("cov", f"must be {n_assets} × {n_assets}, like vol")
    if k <= 0 or horizon <= 0 or n_correlated < 0:
        raise EngineInputError(
            "scenarios", "k and horizon must be positive, n_correlated at least 0"
        )
    labels = list(asset_names) or [f"asset {a}" for a in range(n_assets)]
    reach = k * np.sqrt(horizon)

    alone = np.zeros((2 * n_assets, n_assets))
    alone[np.arange(n_assets) * 2, np.arange(n_assets)] = reach * vol
    alone[np.arange(n_assets) * 2 + 1, np.arange(n_assets)] = -reach * vol
    names = [f"{labels[a]} {sign}{k:g}σ" for a in range(n_assets) for sign in ("+", "−")]

    directions = np.random.default_rng(seed).standard_normal((n_correlated, n_assets))
    directions /= np.maximum(
        np.linalg.norm(directions, axis=1, keepdims=True), np.finfo(float).tiny
    )
    joint = reach * directions @ cholesky_with_jitter(cov).T
    names += [
        f"joint #{n + 1}{mirror}" for n in range(n_correlated) for mirror in ("", " mirrored")
    ]
    joint = np.stack([joint, -joint], axis=1).reshape(2 * n_correlated, n_assets)

    log_moves = np.concatenate([alone, joint])
    return ScenarioSet(
        price_shocks=np.expm1(log_moves),
        vol_shocks=np.zeros_like(log_moves),
        names=tuple(names),
        asset_names=tuple(asset_names),
    )


@dataclass(frozen=True)
class StressResult:
    """Per account: tiered MM of the cross pool, worst scenario loss (≥ 0), the scenario that
    gives it (−1 when no scenario loses) and the risk requirement, the larger of the two."""

    maintenance_margin: np.ndarray
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


def _worst_of_blocks(
    exposures: np.ndarray,
    negated_shocks: np.ndarray,
    accounts: range,
    worst_loss: np.ndarray,
    worst_scenario: np.ndarray,
) -> None:
    """Worst loss and its scenario for a range of accounts, one block (`accounts.step`) at a
    time; `negated_shocks` is −price_shocksᵀ, so that a product is a loss."""
    for start in accounts:
        rows = slice(start, min(start + accounts.step, accounts.stop))
        losses = exposures[rows] @ negated_shocks
        worst = losses.argmax(axis=1)
        worst_scenario[rows] = worst
        # Row r's worst loss sits at r × S + worst[r] of the flattened block.
        worst += np.arange(0, losses.size, losses.shape[1])
        worst_loss[rows] = losses.ravel()[worst]


def stress_margin(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    scenarios: ScenarioSet,
    *,
    revaluation: Revaluation | None = None,
    workers: int | None = None,
) -> StressResult:
    """Worst scenario loss and risk requirement = max(tiered MM, worst loss) of every account.
    Pass the revaluation at these prices when you have it; it is computed otherwise. The
    accounts × scenarios losses are formed block by block (bounded memory), on `workers`
    threads (default: one per core)."""
    n_assets = book.n_assets
    if scenarios.price_shocks.shape[1] != n_assets:
        raise EngineInputError(
            "scenarios.price_shocks", f"must have one column per asset ({n_assets})"
        )
    if revaluation is None:
        revaluation = revalue(book, marks, asset_prices, workers=workers, liquidation_prices=False)
    exposures = account_exposures(book, revaluation)
    worst_loss = np.zeros(book.n_accounts)
    worst_scenario = np.full(book.n_accounts, -1, dtype=np.int64)
    if scenarios.n_scenarios:
        block = max(1, SERIAL_PRODUCT_WORK // (scenarios.n_scenarios * max(1, n_assets)))
        # A few blocks per task: one task per block would cost more to hand out than to run.
        per_task = block * BLOCKS_PER_TASK
        negated_shocks = np.ascontiguousarray(-scenarios.price_shocks.T)
        run_tasks(
            [
                partial(
                    _worst_of_blocks,
                    exposures,
                    negated_shocks,
                    range(start, min(start + per_task, book.n_accounts), block),
                    worst_loss,
                    worst_scenario,
                )
                for start in range(0, book.n_accounts, per_task)
            ],
            workers,
        )
    losing = worst_loss > 0
    worst_scenario[~losing] = -1
    worst_loss[~losing] = 0.0
    maintenance = revaluation.account_maintenance_margin
    return StressResult(
        maintenance_margin=maintenance,
        worst_loss=worst_loss,
        worst_scenario=worst_scenario,
        risk_requirement=np.maximum(maintenance, worst_loss),
    )


@dataclass(frozen=True)
class AccountStress:
    """The Decimal reference's `stress_margin` of one account: its loss under each scenario,
    the worst (≥ 0) and the first scenario giving it (None when none loses), its tiered MM and
    its risk requirement, the larger of the two."""

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
    """The account's USD exposure to each asset it touches: Σ side × notional of its cross
    positions by underlying, plus Σ collateral value of its holdings by asset."""
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
def scenario_loss(exposures: Mapping[str, Decimal], price_shocks: Mapping[str, Decimal]) -> Decimal:
    """Loss under one scenario (`price_shocks` by asset name, absent assets unmoved):
    −Σ exposure × shock of its asset."""
    return -sum(
        (exposure * price_shocks.get(asset, ZERO) for asset, exposure in exposures.items()), ZERO
    )


@exact
def account_stress(
    account: AccountInput,
    shocks: Sequence[Mapping[str, Decimal]],
    *,
    quote: AccountQuote | None = None,
) -> AccountStress:
    """Decimal reference of `stress_margin` for one account over a scenario set
    (`decimal_shocks`): worst loss = max(0, max over scenarios of the loss), risk requirement
    = max(tiered MM, worst loss). Pass the account's quote when you have it."""
    quote = quote_account(account) if quote is None else quote
    exposures = asset_exposures(account, quote)
    losses = tuple(scenario_loss(exposures, moves) for moves in shocks)
    worst_loss, worst_scenario = ZERO, None
    for index, loss in enumerate(losses):
        if loss > worst_loss:
            worst_loss, worst_scenario = loss, index
    return AccountStress(
        scenario_losses=losses,
        worst_loss=worst_loss,
        worst_scenario=worst_scenario,
        maintenance_margin=quote.maintenance_margin,
        risk_requirement=max(quote.maintenance_margin, worst_loss),
    )

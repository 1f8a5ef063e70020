"""Options and portfolio margin for a whole book in float64: `margin.engine.options` vectorized.

Option positions refer to option series (underlying, call or put, strike, expiry); a series is
valued once per scenario and every position on it reads its value from there, so a book of a
million positions on a few hundred series costs a few hundred Black-76 evaluations per
scenario, then gathers and sums. The linear positions come from the `Book` of
`margin.engine.vector`, each moving with its underlying asset; an account's cross positions
and options on one underlying form a group, whose 24 scenario losses are summed at once.

The normal distribution is W. J. Cody's rational approximation of erfc (Math. Comp. 23, 1969,
pp. 631-637; SPECFUN CALERF), good to about 1e-16 relative in every range, tails included; the
tests hold it to `math.erfc`.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.options import (
    GRID,
    HEDGED_DELTA_RATE,
    LONG_DATED_VEGA_POWER,
    MAINTENANCE_SHARE,
    NET_DELTA_RATE,
    SHORT_DATED_VEGA_POWER,
    VOL_SHOCK_DAYS,
)
from margin.engine.parallel import default_workers, run_tasks
from margin.engine.types import CALL, PORTFOLIO, AccountInput
from margin.engine.vector import FLOAT, INDEX, Book

SPOT_SHOCKS = np.array([float(s.spot_shock) for s in GRID])
VOL_SHOCKS = np.array([float(s.vol_shock) for s in GRID])
WEIGHTS = np.array([float(s.weight) for s in GRID])
N_SCENARIOS = len(GRID)
DISTINCT_VOL_SHOCKS = np.unique(VOL_SHOCKS)
# Each scenario's column among the distinct vol shocks: a series' shocked σ is computed once per
# distinct shock, not once per scenario.
SCENARIO_VOL_COLUMN = np.searchsorted(DISTINCT_VOL_SHOCKS, VOL_SHOCKS)
# A linear exposure E loses −w·x·E in a scenario: its worst is the largest −w·x (E > 0) or
# the largest w·x (E < 0), the first in grid order on a tie.
LONG_EXPOSURE_WORST = int(np.argmax(-WEIGHTS * SPOT_SHOCKS))
LONG_EXPOSURE_LOSS = float((-WEIGHTS * SPOT_SHOCKS)[LONG_EXPOSURE_WORST])
SHORT_EXPOSURE_WORST = int(np.argmax(WEIGHTS * SPOT_SHOCKS))
SHORT_EXPOSURE_LOSS = float((WEIGHTS * SPOT_SHOCKS)[SHORT_EXPOSURE_WORST])
DAYS_PER_YEAR = 365.0
SQRT_2 = np.sqrt(2.0)
INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

# Cody's coefficients (CALERF): erf on |x| ≤ 0.46875, erfc on (0.46875, 4] and beyond 4.
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02)
_A += (3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03)
_B += (2.84423683343917062e03,)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01)
_C += (2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03)
_C += (2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02)
_D += (1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03)
_D += (3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1)
_P += (1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1)
_Q += (6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1/√π
_THRESHOLD = 0.46875


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """e^(−y²) without the rounding of y² blowing up: y split at a multiple of 1/16 (Cody)."""
    head = np.trunc(y * 16.0) / 16.0
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def erfc(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y ≥ 0 (Cody's CALERF with JINT = 1), relative error about 1e-16."""
    y = np.asarray(y, dtype=FLOAT)
    result = np.empty_like(y)
    small = y <= _THRESHOLD
    if small.any():
        x = y[small]
        z = x * x
        numerator = _A[4] * z
        denominator = z.copy()
        for a, b in zip(_A[:3], _B[:3], strict=True):
            numerator = (numerator + a) * z
            denominator = (denominator + b) * z
        result[small] = 1.0 - x * (numerator + _A[3]) / (denominator + _B[3])
    middle = (y > _THRESHOLD) & (y <= 4.0)
    if middle.any():
        x = y[middle]
        numerator = _C[8] * x
        denominator = x.copy()
        for c, d in zip(_C[:7], _D[:7], strict=True):
            numerator = (numerator + c) * x
            denominator = (denominator + d) * x
        result[middle] = _exp_minus_square(x) * (numerator + _C[7]) / (denominator + _D[7])
    large = y > 4.0
    if large.any():
        x = y[large]
        z = 1.0 / (x * x)
        numerator = _P[5] * z
        denominator = z.copy()
        for p, q in zip(_P[:4], _Q[:4], strict=True):
            numerator = (numerator + p) * z
            denominator = (denominator + q) * z
        tail = z * (numerator + _P[4]) / (denominator + _Q[4])
        result[large] = _exp_minus_square(x) * (_SQRPI - tail) / x
    return result


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """N(x) = erfc(−x/√2)/2, taken on |x| so the tail keeps its relative precision."""
    x = np.asarray(x, dtype=FLOAT)
    tail = erfc(np.abs(x) / SQRT_2) / 2.0
    return np.where(x > 0, 1.0 - tail, tail)


def normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-x * x / 2.0) * INV_SQRT_2PI


@dataclass(frozen=True)
class Black76:
    """Value and Greeks per contract (vega per vol point, theta per day), one entry per
    series."""

    value: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


def black76_value(
    is_call: np.ndarray,
    forward: np.ndarray,
    strike: np.ndarray,
    vol: np.ndarray,
    expiry_days: np.ndarray,
) -> np.ndarray:
    """Black (1976), rate 0: call F·N(d1) − K·N(d2), put K·N(−d2) − F·N(−d1); arrays broadcast
    (a scenario axis on forward and vol)."""
    deviation = vol * np.sqrt(expiry_days / DAYS_PER_YEAR)
    d1 = (np.log(forward / strike) + deviation * deviation / 2.0) / deviation
    d2 = d1 - deviation
    sign = np.where(is_call, 1.0, -1.0)
    return sign * (forward * normal_cdf(sign * d1) - strike * normal_cdf(sign * d2))


def black76(
    is_call: np.ndarray,
    forward: np.ndarray,
    strike: np.ndarray,
    vol: np.ndarray,
    expiry_days: np.ndarray,
) -> Black76:
    """`margin.engine.options.black76` for arrays of series."""
    root_t = np.sqrt(expiry_days / DAYS_PER_YEAR)
    deviation = vol * root_t
    d1 = (np.log(forward / strike) + deviation * deviation / 2.0) / deviation
    density = normal_pdf(d1)
    return Black76(
        value=black76_value(is_call, forward, strike, vol, expiry_days),
        delta=np.where(is_call, normal_cdf(d1), -normal_cdf(-d1)),
        gamma=density / (forward * deviation),
        vega=forward * density * root_t / 100.0,
        theta=-forward * density * vol / (2.0 * root_t) / DAYS_PER_YEAR,
    )


def vol_shock_scale(expiry_days: np.ndarray) -> np.ndarray:
    """How far a vol shock v reaches per series: (30 / max(1, days))^p, so σ' = σ·(1 + v·scale)."""
    power = np.where(
        expiry_days < float(VOL_SHOCK_DAYS),
        float(SHORT_DATED_VEGA_POWER),
        float(LONG_DATED_VEGA_POWER),
    )
    return (float(VOL_SHOCK_DAYS) / np.maximum(1.0, expiry_days)) ** power


def shocked_vol_factor(expiry_days: np.ndarray) -> np.ndarray:
    """Per series (rows) and distinct vol shock v (columns): 1 + v·(30 / max(1, days))^p."""
    return 1.0 + DISTINCT_VOL_SHOCKS[None, :] * vol_shock_scale(expiry_days)[:, None]


@dataclass(frozen=True)
class OptionSeries:
    """Option series, one entry each: the underlying key (an asset row of the `Book`, or past
    its last asset for an underlying the book holds nothing else of), call or put, strike,
    days to expiry."""

    underlying: np.ndarray
    is_call: np.ndarray
    strike: np.ndarray
    expiry_days: np.ndarray
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.underlying)
        for name in ("is_call", "strike", "expiry_days"):
            if len(getattr(self, name)) != n:
                raise EngineInputError(f"series.{name}", f"must hold {n} series")
        if n and not (np.all(self.strike > 0) and np.all(self.expiry_days > 0)):
            raise EngineInputError("series", "strikes and days to expiry must be positive")

    def __len__(self) -> int:
        return len(self.underlying)

    @cached_property
    def vol_factor(self) -> np.ndarray:
        return shocked_vol_factor(self.expiry_days)


@dataclass(frozen=True)
class OptionPositions:
    """Option positions, one entry each: account, series, side (+1/−1), quantity, entry
    premium. Options are always in the cross pool."""

    account: np.ndarray
    series: np.ndarray
    side: np.ndarray
    quantity: np.ndarray
    entry_price: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.account)
        for name in ("series", "side", "quantity", "entry_price"):
            if len(getattr(self, name)) != n:
                raise EngineInputError(f"options.{name}", f"must hold {n} positions")
        if n and not np.all(self.quantity > 0):
            raise EngineInputError("options.quantity", "must be positive")
        if n and not np.all(np.abs(self.side) == 1):
            raise EngineInputError("options.side", "must be +1 or -1")

    def __len__(self) -> int:
        return len(self.account)


@dataclass(frozen=True)
class OptionBook:
    """The option series and positions of a book beside its linear `Book`; `n_keys`
    underlying keys (the book's assets, then option-only underlyings); `portfolio` marks the
    accounts quoted under the portfolio scheme without holding an option."""

    book: Book
    series: OptionSeries
    positions: OptionPositions
    n_keys: int
    portfolio: np.ndarray
    key_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.n_keys < self.book.n_assets:
            raise EngineInputError("n_keys", "must count at least the book's assets")
        if len(self.portfolio) != self.book.n_accounts:
            raise EngineInputError("portfolio", f"must hold {self.book.n_accounts} accounts")
        if len(self.series) and (
            self.series.underlying.min() < 0 or self.series.underlying.max() >= self.n_keys
        ):
            raise EngineInputError("series.underlying", f"must lie in [0, {self.n_keys})")
        if len(self.positions) and (
            self.positions.series.min() < 0 or self.positions.series.max() >= len(self.series)
        ):
            raise EngineInputError("options.series", "must index a series")

    @cached_property
    def holds_options(self) -> np.ndarray:
        holds = np.zeros(self.book.n_accounts, dtype=bool)
        holds[self.positions.account] = True
        return holds

    @cached_property
    def grid_account(self) -> np.ndarray:
        """Accounts margined by the grid: holding an option, or under the portfolio scheme."""
        return self.holds_options | self.portfolio

    @cached_property
    def linear_rows(self) -> np.ndarray:
        """Cross linear positions of grid accounts: the ones the grid revalues."""
        book = self.book
        return np.flatnonzero(~book.pos_isolated & self.grid_account[book.pos_account])

    @cached_property
    def linear_cell(self) -> np.ndarray:
        book, rows = self.book, self.linear_rows
        return (
            book.pos_account[rows] * self.n_keys + book.instrument_asset[book.pos_instrument[rows]]
        )

    @cached_property
    def option_cell(self) -> np.ndarray:
        return self.positions.account * self.n_keys + self.series.underlying[self.positions.series]

    @cached_property
    def cells(self) -> np.ndarray:
        """Every (account, underlying) cell the grid margins, ascending."""
        return np.unique(np.concatenate([self.linear_cell, self.option_cell]))

    @cached_property
    def option_group(self) -> np.ndarray:
        return np.searchsorted(self.cells, self.option_cell)

    @cached_property
    def linear_group(self) -> np.ndarray:
        return np.searchsorted(self.cells, self.linear_cell)

    @cached_property
    def linear_signed_quantity(self) -> np.ndarray:
        rows = self.linear_rows
        return self.book.pos_side[rows] * self.book.pos_quantity[rows]

    @cached_property
    def linear_instrument(self) -> np.ndarray:
        return self.book.pos_instrument[self.linear_rows]

    @cached_property
    def option_cells(self) -> np.ndarray:
        """The cells holding an option: only their groups need every scenario revalued."""
        return np.unique(self.option_cell)

    @cached_property
    def option_group_rows(self) -> np.ndarray:
        """Each option cell's group (its row among `cells`)."""
        return np.searchsorted(self.cells, self.option_cells)

    @cached_property
    def option_local_group(self) -> np.ndarray:
        """Each option position's row among `option_cells`."""
        return np.searchsorted(self.option_cells, self.option_cell)

    @cached_property
    def option_signed_quantity(self) -> np.ndarray:
        return self.positions.side * self.positions.quantity

    @cached_property
    def group_account(self) -> np.ndarray:
        return self.cells // self.n_keys

    def prepare(self) -> None:
        for name, attribute in vars(OptionBook).items():
            if isinstance(attribute, cached_property):
                getattr(self, name)
        self.series.vol_factor  # noqa: B018 - built now, before threads share the book


@dataclass(frozen=True)
class PortfolioGrid:
    """Figures of `portfolio_grid`. Per series: Black-76 at the forwards and vols. Per option
    position: mark, uPnL, position delta. Per group (an account's underlying, `cells` =
    account × n_keys + key): each scenario's weighted loss (groups × scenarios), scan risk,
    the scenario that sets it (0-based, first in grid order on a tie), net delta, minimum
    delta risk, IM. Per account: options' uPnL, portfolio IM and MM (0 where the grid does
    not apply), `grid_account`, `holds_options`."""

    series: Black76
    option_mark: np.ndarray
    option_unrealized_pnl: np.ndarray
    option_position_delta: np.ndarray
    cells: np.ndarray
    linear_exposure: np.ndarray
    option_group_rows: np.ndarray
    option_losses: np.ndarray
    scan_risk: np.ndarray
    worst_scenario: np.ndarray
    net_delta: np.ndarray
    min_delta_risk: np.ndarray
    group_initial_margin: np.ndarray
    account_option_pnl: np.ndarray
    portfolio_initial_margin: np.ndarray
    portfolio_maintenance_margin: np.ndarray
    grid_account: np.ndarray
    holds_options: np.ndarray

    def scenario_losses(self, groups: np.ndarray) -> np.ndarray:
        """Each scenario's weighted loss of the given groups (groups × scenarios): kept for the
        groups holding options, rebuilt from the linear exposure for the others."""
        groups = np.asarray(groups, dtype=INDEX)
        losses = -(self.linear_exposure[groups][:, None] * SPOT_SHOCKS[None, :])
        losses *= WEIGHTS[None, :]
        place = np.searchsorted(self.option_group_rows, groups)
        place = np.minimum(place, max(len(self.option_group_rows) - 1, 0))
        held = (
            self.option_group_rows[place] == groups
            if len(self.option_group_rows)
            else np.zeros(len(groups), dtype=bool)
        )
        losses[held] = self.option_losses[place[held]]
        return losses


def _sum_by(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(index, weights=weights, minlength=n)[:n].astype(FLOAT, copy=False)


def _scenario_sums_of(
    out: np.ndarray,
    scenarios: range,
    table: np.ndarray,
    series: np.ndarray,
    weights: np.ndarray,
    group: np.ndarray,
) -> None:
    for n in scenarios:
        out[n] = _sum_by(group, weights * table[n][series], out.shape[1])


def scenario_sums(
    table: np.ndarray,
    series: np.ndarray,
    weights: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    workers: int | None = None,
) -> np.ndarray:
    """Per scenario (rows of `table`, scenarios × series) and group: Σ weight × table[series]
    over the positions (`series`, `weights`, `group` one entry each), scenarios × groups. A
    series is priced once per scenario; each position then reads its value, and one bincount
    per scenario sums them. The scenarios are shared among `workers` threads (NumPy lets go of
    the GIL in the gather and the bincount): each writes its own rows, so the figures do not
    depend on how many run."""
    n_scenarios = len(table)
    out = np.empty((n_scenarios, n_groups))
    workers = min(default_workers() if workers is None else workers, n_scenarios) or 1
    run_tasks(
        [
            partial(
                _scenario_sums_of,
                out,
                range(k, n_scenarios, workers),
                table,
                series,
                weights,
                group,
            )
            for k in range(workers)
        ],
        workers,
    )
    return out


def _first_largest_of(losses: np.ndarray, largest: np.ndarray, worst: np.ndarray, rows: slice):
    largest[rows] = losses[0, rows]
    worst[rows] = 0
    for n in range(1, len(losses)):
        larger = losses[n, rows] > largest[rows]
        np.maximum(largest[rows], losses[n, rows], out=largest[rows])
        np.copyto(worst[rows], n, where=larger)


def first_largest(losses: np.ndarray, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per column of `losses` (scenarios × groups): the largest loss and the first scenario
    that reaches it, a scenario row at a time, the groups shared among `workers` threads."""
    n_groups = losses.shape[1]
    largest = np.empty(n_groups)
    worst = np.empty(n_groups, dtype=INDEX)
    workers = default_workers() if workers is None else workers
    bounds = np.linspace(0, n_groups, max(1, workers) + 1).astype(int)
    run_tasks(
        [
            partial(_first_largest_of, losses, largest, worst, slice(lo, hi))
            for lo, hi in itertools.pairwise(bounds)
        ],
        workers,
    )
    return largest, worst


def portfolio_grid(
    options: OptionBook,
    marks: np.ndarray,
    forwards: np.ndarray,
    vols: np.ndarray,
    *,
    workers: int | None = None,
) -> PortfolioGrid:
    """Every option's mark and Greeks and every grid account's portfolio margin
    (`margin.engine.options.portfolio_margin`): `marks` the linear instruments' marks (as for
    `revalue`), `forwards` and `vols` each series' forward F and implied vol; the scenario
    sums on `workers` threads (default: one per core)."""
    book, series, positions = options.book, options.series, options.positions
    forwards, vols = np.asarray(forwards, dtype=FLOAT), np.asarray(vols, dtype=FLOAT)
    marks = np.asarray(marks, dtype=FLOAT)
    if forwards.shape != (len(series),) or vols.shape != (len(series),):
        raise EngineInputError(
            "forwards", f"must hold one forward and vol per series ({len(series)})"
        )
    if len(series) and not (np.all(forwards > 0) and np.all(vols > 0)):
        raise EngineInputError("forwards", "forwards and vols must be positive")
    options.prepare()

    now = black76(series.is_call, forwards, series.strike, vols, series.expiry_days)
    # Per series and scenario: the value under the scenario less the value now.
    shocked_vols = (vols[:, None] * series.vol_factor)[:, SCENARIO_VOL_COLUMN]
    shocked = black76_value(
        series.is_call[:, None],
        forwards[:, None] * (1.0 + SPOT_SHOCKS[None, :]),
        series.strike[:, None],
        shocked_vols,
        series.expiry_days[:, None],
    )
    change = shocked - now.value[:, None]

    signed = options.option_signed_quantity
    mark = now.value[positions.series]
    option_pnl = signed * (mark - positions.entry_price)
    position_delta = signed * now.delta[positions.series]

    n_groups = len(options.cells)
    linear_dollar_delta = options.linear_signed_quantity * marks[options.linear_instrument]
    linear_exposure = _sum_by(options.linear_group, linear_dollar_delta, n_groups)
    # A group of linear positions only loses −w·x·E in each scenario, E its dollar exposure:
    # the largest is E times the largest −w·x for a long exposure, |E| times the largest w·x
    # for a short one, in closed form.
    largest = np.where(
        linear_exposure >= 0,
        linear_exposure * LONG_EXPOSURE_LOSS,
        -linear_exposure * SHORT_EXPOSURE_LOSS,
    )
    worst = np.where(
        linear_exposure > 0,
        LONG_EXPOSURE_WORST,
        np.where(linear_exposure < 0, SHORT_EXPOSURE_WORST, 0),
    ).astype(INDEX)
    # Groups holding options: every scenario, scenario-major (scenarios × groups), each
    # scenario's option value changes summed per group.
    option_rows = options.option_group_rows
    losses = scenario_sums(
        np.ascontiguousarray(change.T),
        positions.series,
        signed,
        options.option_local_group,
        len(option_rows),
        workers,
    )
    # A row at a time: a scenarios × groups temporary costs more in fresh pages than the sums.
    exposure = linear_exposure[option_rows]
    for n in range(N_SCENARIOS):
        losses[n] += SPOT_SHOCKS[n] * exposure
        losses[n] *= -WEIGHTS[n]
    option_largest, option_worst = first_largest(losses, workers)
    largest[option_rows] = option_largest
    worst[option_rows] = option_worst
    scan = np.maximum(largest, 0.0)

    option_dollar_delta = position_delta * forwards[positions.series]
    dollar_deltas = np.concatenate([option_dollar_delta, linear_dollar_delta])
    groups = np.concatenate([options.option_group, options.linear_group])
    long = _sum_by(groups, np.maximum(dollar_deltas, 0.0), n_groups)
    short = _sum_by(groups, np.minimum(dollar_deltas, 0.0), n_groups)
    floor = float(NET_DELTA_RATE) * np.abs(long + short) + float(HEDGED_DELTA_RATE) * np.minimum(
        long, -short
    )
    net_delta = _sum_by(options.option_group, position_delta, n_groups) + _sum_by(
        options.linear_group, options.linear_signed_quantity, n_groups
    )
    group_initial = np.maximum(scan, floor)
    initial = _sum_by(options.group_account, group_initial, book.n_accounts)
    return PortfolioGrid(
        series=now,
        option_mark=mark,
        option_unrealized_pnl=option_pnl,
        option_position_delta=position_delta,
        cells=options.cells,
        linear_exposure=linear_exposure,
        option_group_rows=option_rows,
        option_losses=losses.T,
        scan_risk=scan,
        worst_scenario=worst,
        net_delta=net_delta,
        min_delta_risk=floor,
        group_initial_margin=group_initial,
        account_option_pnl=_sum_by(positions.account, option_pnl, book.n_accounts),
        portfolio_initial_margin=initial,
        portfolio_maintenance_margin=float(MAINTENANCE_SHARE) * initial,
        grid_account=options.grid_account,
        holds_options=options.holds_options,
    )


@dataclass(frozen=True)
class PortfolioAccounts:
    """Per account, the cross pool's figures with the grid where it applies (the reference's
    `portfolio_quote`): margin balance with options at their mark, and the requirement, ratio
    and withdrawable of the grid for grid accounts, the tiered ones for the others."""

    unrealized_pnl: np.ndarray
    margin_balance: np.ndarray
    maintenance_margin: np.ndarray
    initial_margin: np.ndarray
    margin_ratio: np.ndarray
    withdrawable: np.ndarray


def portfolio_accounts(revaluation, grid: PortfolioGrid) -> PortfolioAccounts:
    """Join `revalue`'s figures (a `margin.engine.vector.Revaluation`) and the grid's."""
    pnl = revaluation.account_unrealized_pnl + grid.account_option_pnl
    balance = revaluation.collateral_value + pnl
    on_grid = grid.grid_account
    maintenance = np.where(
        on_grid, grid.portfolio_maintenance_margin, revaluation.account_maintenance_margin
    )
    initial = np.where(on_grid, grid.portfolio_initial_margin, revaluation.account_initial_margin)
    return PortfolioAccounts(
        unrealized_pnl=pnl,
        margin_balance=balance,
        maintenance_margin=maintenance,
        initial_margin=initial,
        margin_ratio=np.divide(
            maintenance, balance, out=np.full_like(balance, np.nan), where=balance > 0
        ),
        withdrawable=np.maximum(revaluation.collateral_value + np.minimum(pnl, 0.0) - initial, 0.0),
    )


@dataclass(frozen=True)
class OptionMarket:
    """What `portfolio_grid` prices series at: a forward and a vol per series."""

    forwards: np.ndarray
    vols: np.ndarray


def option_book_from_accounts(
    accounts: Sequence[AccountInput], book: Book
) -> tuple[OptionBook, OptionMarket]:
    """The options of the given accounts beside their `book` (from
    `vector.book_from_accounts`, same account order). Series are keyed by (underlying, type,
    strike, days, forward, vol): one series, one price."""
    keys = {name: n for n, name in enumerate(book.asset_names)}
    series_rows: dict[tuple, int] = {}
    columns: dict[str, list] = {
        name: [] for name in ("underlying", "is_call", "strike", "expiry_days", "forward", "vol")
    }
    names: list[str] = []
    position_columns: dict[str, list] = {
        name: [] for name in ("account", "series", "side", "quantity", "entry_price")
    }
    for a, account in enumerate(accounts):
        for option in account.options:
            if option.underlying not in keys:
                keys[option.underlying] = len(keys)
            key = (
                option.underlying,
                option.option_type,
                option.strike,
                option.expiry_days,
                option.underlying_price,
                option.implied_vol,
            )
            if key not in series_rows:
                series_rows[key] = len(names)
                names.append(option.id)
                columns["underlying"].append(keys[option.underlying])
                columns["is_call"].append(option.option_type == CALL)
                columns["strike"].append(float(option.strike))
                columns["expiry_days"].append(float(option.expiry_days))
                columns["forward"].append(float(option.underlying_price))
                columns["vol"].append(float(option.implied_vol))
            position_columns["account"].append(a)
            position_columns["series"].append(series_rows[key])
            position_columns["side"].append(float(option.side))
            position_columns["quantity"].append(float(option.quantity))
            position_columns["entry_price"].append(float(option.entry_price))
    series = OptionSeries(
        underlying=np.array(columns["underlying"], dtype=INDEX),
        is_call=np.array(columns["is_call"], dtype=bool),
        strike=np.array(columns["strike"], dtype=FLOAT),
        expiry_days=np.array(columns["expiry_days"], dtype=FLOAT),
        names=tuple(names),
    )
    positions = OptionPositions(
        account=np.array(position_columns["account"], dtype=INDEX),
        series=np.array(position_columns["series"], dtype=INDEX),
        side=np.array(position_columns["side"], dtype=FLOAT),
        quantity=np.array(position_columns["quantity"], dtype=FLOAT),
        entry_price=np.array(position_columns["entry_price"], dtype=FLOAT),
    )
    option_book = OptionBook(
        book=book,
        series=series,
        positions=positions,
        n_keys=len(keys),
        portfolio=np.array([a.margin_scheme == PORTFOLIO for a in accounts], dtype=bool),
        key_names=tuple(keys),
    )
    market = OptionMarket(
        forwards=np.array(columns["forward"], dtype=FLOAT),
        vols=np.array(columns["vol"], dtype=FLOAT),
    )
    return option_book, market

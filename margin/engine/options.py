"""Options and portfolio margin, the Decimal reference (vectors/OPTIONS.md).

Black (1976) on the forward with a zero rate, as Deribit, OKX and Bybit quote crypto options:
an option's value, its Greeks and, for an account, Paradex's portfolio margin (docs.paradex.trade,
"Portfolio margin"): every position on one underlying revalued under 16 regular and 8 weighted
tail scenarios of spot and implied volatility, the largest weighted loss (the scan risk) floored
by a minimum delta risk, IM = Σ max(scan, delta floor) over underlyings, MM = 50 % of IM.

`margin.engine.options_vector` computes the same figures for a whole book in float64; the tests
hold the two equal within 1e-9.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, getcontext, localcontext

from margin.engine.errors import EngineInputError
from margin.engine.precision import DECIMAL_PRECISION, exact
from margin.engine.types import CALL, ONE, ZERO, OptionInput, PositionInput

DAYS_PER_YEAR = Decimal(365)
# π to 64 digits: the Decimal module has exp, ln and sqrt but no π, and the engine works at 50.
PI = Decimal("3.141592653589793238462643383279502884197169399375105820974944592")


@dataclass(frozen=True)
class Scenario:
    """One scenario of the portfolio-margin grid: spot shock `x`, vol shock `v`, loss weight."""

    spot_shock: Decimal
    vol_shock: Decimal
    weight: Decimal


VOL_UP = Decimal("0.40")
VOL_DOWN = Decimal("-0.22")
REGULAR_SPOT_SHOCKS = tuple(Decimal(x) for x in ("0", "0.04", "-0.04", "0.08", "-0.08"))
REGULAR_SPOT_SHOCKS += tuple(Decimal(x) for x in ("0.12", "-0.12"))
TAIL_SCENARIOS = (
    ("-0.66", "0.24"),
    ("-0.33", "0.48"),
    ("0.50", "0.32"),
    ("1.00", "0.16"),
    ("2.00", "0.08"),
    ("3.00", "0.0533"),
    ("4.00", "0.04"),
    ("5.00", "0.032"),
)
GRID: tuple[Scenario, ...] = (
    *(Scenario(x, v, ONE) for x in REGULAR_SPOT_SHOCKS for v in (VOL_UP, VOL_DOWN)),
    Scenario(Decimal("0.16"), VOL_UP, ONE),
    Scenario(Decimal("-0.16"), VOL_UP, ONE),
    *(Scenario(Decimal(x), VOL_UP, Decimal(w)) for x, w in TAIL_SCENARIOS),
)
"""Paradex's 24 scenarios: x ∈ {0, ±4 %, ±8 %, ±12 %} with vol +40 % and −22 %, ±16 % with
+40 % only, then the tail moves with their weights (all with vol +40 %)."""

VOL_SHOCK_DAYS = Decimal(30)
SHORT_DATED_VEGA_POWER = Decimal("0.30")
LONG_DATED_VEGA_POWER = Decimal("0.13")
NET_DELTA_RATE = Decimal("0.02")
HEDGED_DELTA_RATE = Decimal("0.01")
MAINTENANCE_SHARE = Decimal("0.5")


# --- the standard normal distribution in Decimal ----------------------------------------------

# Below this the series of erf converges with every term positive (no cancellation); above it
# erfc's continued fraction converges in a few dozen terms.
_SERIES_LIMIT = Decimal(3)


def _erf_series(z: Decimal) -> Decimal:
    """erf(z) = 2/√π · e^(−z²) · Σ 2ⁿ z^(2n+1) / (1·3·5···(2n+1)) (Abramowitz & Stegun 7.1.6):
    every term positive, so no digit is lost to cancellation."""
    square = z * z
    term = z
    total = z
    n = 0
    epsilon = Decimal(10) ** (-getcontext().prec - 5)
    while term > epsilon * total:
        n += 1
        term = term * 2 * square / (2 * n + 1)
        total += term
    return 2 / PI.sqrt() * (-square).exp() * total


def _erfc_continued_fraction(z: Decimal) -> Decimal:
    """erfc(z) = e^(−z²)/√π · 1/(z + ½/(z + 1/(z + (3/2)/(z + 2/(z + …))))) (A&S 7.1.14),
    evaluated from the tail: for z ≥ 3 a few hundred terms reach far below 1e−50."""
    tail = z
    for n in range(400, 0, -1):
        tail = z + Decimal(n) / 2 / tail
    return (-z * z).exp() / (PI.sqrt() * tail)


@exact
def erfc(z: Decimal) -> Decimal:
    """The complementary error function for z ≥ 0, to the engine's precision (the series works
    20 digits above it, so 1 − erf keeps every digit it needs)."""
    if z < 0:
        raise EngineInputError("z", "erfc is taken of |z| here")
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION + 20
        value = ONE - _erf_series(z) if z < _SERIES_LIMIT else _erfc_continued_fraction(z)
    return +value


@exact
def normal_cdf(x: Decimal) -> Decimal:
    """N(x), the standard normal distribution function: erfc(−x/√2) / 2, taken on |x| so the
    tail keeps its relative precision."""
    tail = erfc(abs(x) / Decimal(2).sqrt()) / 2
    return ONE - tail if x > 0 else tail


@exact
def normal_pdf(x: Decimal) -> Decimal:
    """n(x) = e^(−x²/2) / √(2π)."""
    return (-x * x / 2).exp() / (2 * PI).sqrt()


# --- Black-76 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionValue:
    """Black-76 value and Greeks of one contract: vega per vol point, theta per day."""

    value: Decimal
    delta: Decimal
    gamma: Decimal
    vega: Decimal
    theta: Decimal


@exact
def years(expiry_days: Decimal) -> Decimal:
    """T = expiry_days / 365, as the venues count calendar days."""
    return expiry_days / DAYS_PER_YEAR


@exact
def black76_d1_d2(
    forward: Decimal, strike: Decimal, vol: Decimal, expiry_days: Decimal
) -> tuple[Decimal, Decimal]:
    """d1 = (ln(F/K) + σ²T/2) / (σ√T), d2 = d1 − σ√T."""
    deviation = vol * years(expiry_days).sqrt()
    d1 = ((forward / strike).ln() + deviation * deviation / 2) / deviation
    return d1, d1 - deviation


@exact
def black76_value(
    option_type: str, forward: Decimal, strike: Decimal, vol: Decimal, expiry_days: Decimal
) -> Decimal:
    """Black (1976), rate 0: call F·N(d1) − K·N(d2), put K·N(−d2) − F·N(−d1)."""
    d1, d2 = black76_d1_d2(forward, strike, vol, expiry_days)
    if option_type == CALL:
        return forward * normal_cdf(d1) - strike * normal_cdf(d2)
    return strike * normal_cdf(-d2) - forward * normal_cdf(-d1)


@exact
def black76(
    option_type: str, forward: Decimal, strike: Decimal, vol: Decimal, expiry_days: Decimal
) -> OptionValue:
    """Value and Greeks (vectors/OPTIONS.md): delta call N(d1), put N(d1) − 1 = −N(−d1);
    gamma n(d1)/(Fσ√T); vega F·n(d1)·√T/100 per vol point; theta −F·n(d1)·σ/(2√T)/365 per
    day."""
    d1, _ = black76_d1_d2(forward, strike, vol, expiry_days)
    root_t = years(expiry_days).sqrt()
    density = normal_pdf(d1)
    delta = normal_cdf(d1) if option_type == CALL else -normal_cdf(-d1)
    return OptionValue(
        value=black76_value(option_type, forward, strike, vol, expiry_days),
        delta=delta,
        gamma=density / (forward * vol * root_t),
        vega=forward * density * root_t / 100,
        theta=-forward * density * vol / (2 * root_t) / DAYS_PER_YEAR,
    )


# --- the portfolio-margin grid -----------------------------------------------------------------


@exact
def shocked_vol(vol: Decimal, vol_shock: Decimal, expiry_days: Decimal) -> Decimal:
    """σ' = σ·(1 + v·(30 / max(1, days))^p), p = 0.30 under 30 days, 0.13 from 30 on: short
    expiries' vols move more."""
    power = SHORT_DATED_VEGA_POWER if expiry_days < VOL_SHOCK_DAYS else LONG_DATED_VEGA_POWER
    scale = (VOL_SHOCK_DAYS / max(ONE, expiry_days)) ** power
    return vol * (ONE + vol_shock * scale)


def _option_black76(option: OptionInput) -> OptionValue:
    return black76(
        option.option_type,
        option.underlying_price,
        option.strike,
        option.implied_vol,
        option.expiry_days,
    )


@exact
def option_value_change(option: OptionInput, scenario: Scenario, value_now: Decimal) -> Decimal:
    """side × q × (value at F·(1 + x) and σ' − `value_now`), time to expiry held."""
    shocked = black76_value(
        option.option_type,
        option.underlying_price * (ONE + scenario.spot_shock),
        option.strike,
        shocked_vol(option.implied_vol, scenario.vol_shock, option.expiry_days),
        option.expiry_days,
    )
    return option.side * option.quantity * (shocked - value_now)


@exact
def linear_value_change(position: PositionInput, scenario: Scenario) -> Decimal:
    """A perpetual's or future's mark moves with its underlying: side × q × mark × x."""
    return position.side * position.quantity * position.mark_price * scenario.spot_shock


@exact
def min_delta_risk(dollar_deltas: Iterable[Decimal]) -> Decimal:
    """Paradex's minimum delta risk, (2 % × |net delta| + 1 % × hedged delta) × F, on each
    position's delta × its own price: long = Σ positive, short = Σ negative, net = long + short
    (the signed sum, Paradex's "Net Delta"), hedged = min(long, |short|) (Paradex's
    (gross − |net|) / 2). Where every position on the underlying has the same price F this is
    the published formula exactly; a future's mark off the options' forward counts at its own."""
    deltas = list(dollar_deltas)
    long = sum((d for d in deltas if d > 0), ZERO)
    short = sum((d for d in deltas if d < 0), ZERO)
    return NET_DELTA_RATE * abs(long + short) + HEDGED_DELTA_RATE * min(long, -short)


@dataclass(frozen=True)
class UnderlyingRisk:
    """The grid of one underlying: each scenario's weighted loss, the scan risk (the largest,
    at least 0) and the scenario that sets it, the delta floor and the requirement."""

    underlying: str
    losses: tuple[Decimal, ...]
    scan_risk: Decimal
    worst_scenario: int
    net_delta: Decimal
    min_delta_risk: Decimal
    initial_margin: Decimal


@exact
def underlying_risk(
    underlying: str, options: Iterable[OptionInput], positions: Iterable[PositionInput]
) -> UnderlyingRisk:
    """The grid for one underlying: loss of a scenario = −Σ change in value × weight; scan risk
    = max(0, largest loss); IM = max(scan risk, minimum delta risk). Ties name the first
    scenario in grid order."""
    options, positions = tuple(options), tuple(positions)
    values_now = [_option_black76(o) for o in options]
    losses = tuple(
        -(
            sum(
                (
                    option_value_change(o, s, v.value)
                    for o, v in zip(options, values_now, strict=True)
                ),
                ZERO,
            )
            + sum((linear_value_change(p, s) for p in positions), ZERO)
        )
        * s.weight
        for s in GRID
    )
    worst = max(range(len(losses)), key=lambda n: losses[n])
    position_deltas = [
        o.side * o.quantity * v.delta for o, v in zip(options, values_now, strict=True)
    ]
    linear_deltas = [p.side * p.quantity for p in positions]
    dollar_deltas = [
        d * o.underlying_price for d, o in zip(position_deltas, options, strict=True)
    ] + [d * p.mark_price for d, p in zip(linear_deltas, positions, strict=True)]
    scan = max(ZERO, losses[worst])
    floor = min_delta_risk(dollar_deltas)
    return UnderlyingRisk(
        underlying=underlying,
        losses=losses,
        scan_risk=scan,
        worst_scenario=worst,
        net_delta=sum(position_deltas, ZERO) + sum(linear_deltas, ZERO),
        min_delta_risk=floor,
        initial_margin=max(scan, floor),
    )


@dataclass(frozen=True)
class OptionQuote:
    """One option row of the answer: per-contract mark and Greeks (unsigned by side), the
    position's uPnL and delta."""

    id: str
    side: int
    quantity: Decimal
    underlying: str
    mark_price: Decimal
    unrealized_pnl: Decimal
    delta: Decimal
    gamma: Decimal
    vega: Decimal
    theta: Decimal
    position_delta: Decimal


@exact
def option_quote(option: OptionInput) -> OptionQuote:
    greeks = _option_black76(option)
    signed = option.side * option.quantity
    return OptionQuote(
        id=option.id,
        side=option.side,
        quantity=option.quantity,
        underlying=option.underlying,
        mark_price=greeks.value,
        unrealized_pnl=signed * (greeks.value - option.entry_price),
        delta=greeks.delta,
        gamma=greeks.gamma,
        vega=greeks.vega,
        theta=greeks.theta,
        position_delta=signed * greeks.delta,
    )


@dataclass(frozen=True)
class PortfolioMargin:
    """The portfolio figures of a cross pool: per underlying (sorted by name) and summed."""

    underlyings: tuple[UnderlyingRisk, ...]
    initial_margin: Decimal
    maintenance_margin: Decimal


@exact
def portfolio_margin(
    options: Iterable[OptionInput], positions: Iterable[PositionInput]
) -> PortfolioMargin:
    """IM = Σ_U max(scan_risk(U), min_delta_risk(U)), MM = 50 % of IM, over the cross pool:
    isolated positions stand alone on their own margin and stay out of the grid."""
    options = tuple(options)
    positions = tuple(p for p in positions if not p.is_isolated)
    names = sorted({o.underlying for o in options} | {p.risk_asset for p in positions})
    risks = tuple(
        underlying_risk(
            name,
            (o for o in options if o.underlying == name),
            (p for p in positions if p.risk_asset == name),
        )
        for name in names
    )
    initial = sum((r.initial_margin for r in risks), ZERO)
    return PortfolioMargin(
        underlyings=risks, initial_margin=initial, maintenance_margin=MAINTENANCE_SHARE * initial
    )


@dataclass(frozen=True)
class NetGreeks:
    """An account's Greeks on one underlying of its grid: delta in units of the underlying
    (options and the linear positions on it, each ±1 per contract), gamma, vega per vol point
    and theta per day summed as side × quantity × the contract's; the grid's figures beside."""

    risk: UnderlyingRisk
    gamma: Decimal
    vega: Decimal
    theta: Decimal

    @property
    def underlying(self) -> str:
        return self.risk.underlying

    @property
    def delta(self) -> Decimal:
        return self.risk.net_delta

    @property
    def binding_scenario(self) -> Scenario:
        return GRID[self.risk.worst_scenario]


@exact
def account_greeks(
    options: Iterable[OptionQuote], portfolio: PortfolioMargin | None
) -> tuple[NetGreeks, ...]:
    """Per underlying of the account's grid (none off the grid), its net Greeks."""
    options = tuple(options)
    if portfolio is None:
        return ()

    def total(underlying: str, greek: str) -> Decimal:
        return sum(
            (
                o.side * o.quantity * getattr(o, greek)
                for o in options
                if o.underlying == underlying
            ),
            ZERO,
        )

    return tuple(
        NetGreeks(
            risk=risk,
            gamma=total(risk.underlying, "gamma"),
            vega=total(risk.underlying, "vega"),
            theta=total(risk.underlying, "theta"),
        )
        for risk in portfolio.underlyings
    )

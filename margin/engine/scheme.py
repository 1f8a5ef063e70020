"""Margin schemes: what an account's maintenance requirement is.

- `standard` (the default): Binance USD-M's tiered maintenance margin of the cross pool.
- `portfolio` (assigned by the risk desk): max(tiered MM, stress requirement), the stress
  requirement being the worst loss of `margin.engine.stress` (the closed-form covariance loss
  beside the named moves). Deribit's portfolio margin and Binance's Portfolio Margin Pro both
  charge a portfolio's scenario loss in place of per-position margin; the tiered MM stays a
  floor so that the scheme never asks less than the standard one for a one-leg book.

Every figure the requirement drives follows it: the margin ratio (requirement / margin
balance) and so the account's state and its liquidation; the initial requirement,
max(tiered IM, requirement / margin-call ratio), so that a withdrawal or a new order never
leaves the account past a margin call under stress (MM is then 80 % of IM at the default 0.8,
as in Deribit's portfolio margin); and the withdrawable built on it.

An account holding options is margined by the portfolio grid as well (`margin.engine.options`,
Paradex's scan risk and delta floor, MM = 50 % of the grid IM), under either scheme: its
requirement is max(tiered MM of its linear positions, grid MM) under `standard`, max(tiered MM,
stress loss, grid MM) under `portfolio`. The tiered MM stays a floor as above; the grid alone
can revalue an option (the stress loss is linear in the exposures), so it is never left out
for an account that holds one. Its initial requirement is at least the grid IM. The quote
format's `"margin_scheme": "portfolio"` (vectors/OPTIONS.md) asks for the grid without a
stress model, which only the book's revaluation has; there the grid alone answers.

`maintenance_requirement` is the one rule, in both faces.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.options_vector import PortfolioGrid
from margin.engine.precision import exact
from margin.engine.reference import margin_ratio, quote_account, withdrawable
from margin.engine.stress import StressModel, account_stress
from margin.engine.types import (
    MARGIN_SCHEMES,
    ONE,
    PORTFOLIO,
    STANDARD,
    ZERO,
    AccountInput,
    PositionInput,
)
from margin.engine.vector import Revaluation

TIERED = "tiered"
STRESS = "stress"
GRID = "grid"


def _check(scheme: str) -> None:
    if scheme not in MARGIN_SCHEMES:
        raise EngineInputError("margin_scheme", f"must be standard or portfolio, got {scheme!r}")


@dataclass(frozen=True)
class Requirement:
    """An account's requirement under its scheme, the term that binds (`tiered`, `stress` or
    `grid`) and the figures built on it."""

    scheme: str
    collateral_value: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    tiered_maintenance: Decimal
    tiered_initial: Decimal
    stress_loss: Decimal | None
    maintenance: Decimal
    binding: str
    initial: Decimal
    margin_ratio: Decimal | None
    withdrawable: Decimal
    grid_maintenance: Decimal | None = None
    grid_initial: Decimal | None = None


@exact
def maintenance_requirement(
    *,
    scheme: str,
    tiered_maintenance: Decimal,
    stress_loss: Decimal | None,
    grid_maintenance: Decimal | None = None,
) -> tuple[Decimal, str]:
    """standard: the tiered MM. portfolio: max(tiered MM, stress loss); with no stress loss the
    portfolio scheme cannot be computed and is refused (fail closed, never the smaller). An
    account holding options (`grid_maintenance` given) also answers for the grid's MM, under
    either scheme. A tie names the earlier of tiered, stress, grid."""
    _check(scheme)
    terms = [(tiered_maintenance, TIERED)]
    if scheme == PORTFOLIO:
        if stress_loss is None:
            raise EngineInputError("stress_loss", "the portfolio scheme needs a stress loss")
        terms.append((stress_loss, STRESS))
    if grid_maintenance is not None:
        terms.append((grid_maintenance, GRID))
    best = terms[0]
    for term in terms[1:]:
        if term[0] > best[0]:
            best = term
    return best


@exact
def account_requirement(
    *,
    scheme: str,
    collateral_value: Decimal,
    unrealized_pnl: Decimal,
    margin_balance: Decimal,
    tiered_maintenance: Decimal,
    tiered_initial: Decimal,
    stress_loss: Decimal | None,
    margin_call_ratio: Decimal,
    grid_maintenance: Decimal | None = None,
    grid_initial: Decimal | None = None,
) -> Requirement:
    """Decimal reference of `scheme_figures` for one cross pool; `grid_maintenance` and
    `grid_initial` for an account holding options (both or neither)."""
    if margin_call_ratio <= 0:
        raise EngineInputError("margin_call_ratio", "must be positive")
    if (grid_maintenance is None) != (grid_initial is None):
        raise EngineInputError("grid_initial", "the grid's MM and IM come together")
    maintenance, binding = maintenance_requirement(
        scheme=scheme,
        tiered_maintenance=tiered_maintenance,
        stress_loss=stress_loss,
        grid_maintenance=grid_maintenance,
    )
    initial = tiered_initial
    if scheme == PORTFOLIO:
        initial = max(tiered_initial, maintenance / margin_call_ratio)
    if grid_initial is not None:
        initial = max(initial, grid_initial)
    return Requirement(
        scheme=scheme,
        collateral_value=collateral_value,
        unrealized_pnl=unrealized_pnl,
        margin_balance=margin_balance,
        tiered_maintenance=tiered_maintenance,
        tiered_initial=tiered_initial,
        stress_loss=stress_loss,
        maintenance=maintenance,
        binding=binding,
        initial=initial,
        margin_ratio=margin_ratio(maintenance, margin_balance),
        withdrawable=withdrawable(collateral_value, unrealized_pnl, initial),
        grid_maintenance=grid_maintenance,
        grid_initial=grid_initial,
    )


@dataclass(frozen=True)
class SchemeFigures:
    """Per account, under its scheme: the maintenance requirement, whether the stress term
    binds, the initial requirement, the margin ratio and the withdrawable."""

    maintenance: np.ndarray
    stress_binds: np.ndarray
    initial: np.ndarray
    margin_ratio: np.ndarray
    withdrawable: np.ndarray
    grid_binds: np.ndarray


def scheme_figures(
    revaluation: Revaluation,
    stress_loss: np.ndarray,
    portfolio: np.ndarray,
    *,
    margin_call_ratio: float,
    grid: PortfolioGrid | None = None,
) -> SchemeFigures:
    """Vectorized `account_requirement` over a book: `portfolio` marks the accounts under the
    portfolio scheme, `stress_loss` their worst loss (nan where there is none: a portfolio
    account without one is refused, as in the reference); `grid` the options grid
    (`options_vector.portfolio_grid`), whose MM and IM count for the accounts holding options,
    their options' uPnL in the margin balance."""
    if margin_call_ratio <= 0:
        raise EngineInputError("margin_call_ratio", "must be positive")
    tiered = revaluation.account_maintenance_margin
    if np.any(portfolio & ~np.isfinite(stress_loss)):
        raise EngineInputError("stress_loss", "the portfolio scheme needs a stress loss")
    stress_binds = portfolio & (np.nan_to_num(stress_loss) > tiered)
    maintenance = np.where(stress_binds, stress_loss, tiered)
    initial = np.where(
        portfolio,
        np.maximum(revaluation.account_initial_margin, maintenance / margin_call_ratio),
        revaluation.account_initial_margin,
    )
    balance = revaluation.margin_balance
    pnl = revaluation.account_unrealized_pnl
    grid_binds = np.zeros(len(tiered), dtype=bool)
    if grid is not None:
        # The grid of an account under the portfolio scheme without options is the quote
        # format's; the book's accounts answer for it only when they hold an option.
        holds = grid.holds_options
        grid_binds = holds & (grid.portfolio_maintenance_margin > maintenance)
        maintenance = np.where(grid_binds, grid.portfolio_maintenance_margin, maintenance)
        stress_binds &= ~grid_binds
        initial = np.where(holds, np.maximum(initial, grid.portfolio_initial_margin), initial)
        pnl = pnl + grid.account_option_pnl
        balance = balance + grid.account_option_pnl
    return SchemeFigures(
        maintenance=maintenance,
        stress_binds=stress_binds,
        grid_binds=grid_binds,
        initial=initial,
        margin_ratio=np.divide(
            maintenance, balance, out=np.full_like(balance, np.nan), where=balance > 0
        ),
        withdrawable=np.maximum(revaluation.collateral_value + np.minimum(pnl, 0.0) - initial, 0.0),
    )


@exact
def explain_requirement(requirement: Requirement, margin_call_ratio: Decimal) -> dict:
    """The requirement's steps, keyed like `margin.engine.explain` (`account.requirement`);
    under the portfolio scheme also the margin ratio, initial margin and withdrawable it
    drives, in place of the tiered ones. The binding term is named in the step."""
    # Imported here: explain builds on the reference, as this module does; neither needs the
    # other to load.
    from margin.engine.explain import Step

    r = requirement
    if r.scheme == STANDARD and r.grid_maintenance is None:
        return {
            "account.requirement": [
                Step(
                    "maintenance requirement (standard scheme: tiered MM binds)",
                    "{tiered_maintenance}",
                    {"tiered_maintenance": r.tiered_maintenance},
                    r.maintenance,
                )
            ]
        }
    binds = {
        STRESS: "the stress loss binds",
        GRID: "the options grid binds",
        TIERED: "the tiered MM binds",
    }[r.binding]
    terms = ["{tiered_maintenance}"]
    inputs = {"tiered_maintenance": r.tiered_maintenance}
    if r.scheme == PORTFOLIO:
        terms.append("{stress_loss}")
        inputs["stress_loss"] = r.stress_loss
    if r.grid_maintenance is not None:
        terms.append("{grid_maintenance}")
        inputs["grid_maintenance"] = r.grid_maintenance
    requirement_step = Step(
        f"maintenance requirement ({r.scheme} scheme: {binds})",
        f"max({', '.join(terms)})",
        inputs,
        r.maintenance,
    )
    ratio_formula = "{requirement} ÷ {margin_balance}"
    if r.margin_ratio is None:
        ratio_formula += " (none: the margin balance is not positive)"
    initial_terms = ["{tiered_initial}"]
    initial_inputs = {"tiered_initial": r.tiered_initial}
    if r.scheme == PORTFOLIO:
        initial_terms.append("{requirement} ÷ {margin_call_ratio}")
        initial_inputs |= {"requirement": r.maintenance, "margin_call_ratio": margin_call_ratio}
    if r.grid_initial is not None:
        initial_terms.append("{grid_initial}")
        initial_inputs["grid_initial"] = r.grid_initial
    initial_step = Step(
        "initial requirement", f"max({', '.join(initial_terms)})", initial_inputs, r.initial
    )
    return {
        "account.requirement": [requirement_step],
        "account.margin_ratio": [
            requirement_step,
            Step(
                "margin ratio",
                ratio_formula,
                {"requirement": r.maintenance, "margin_balance": r.margin_balance},
                r.margin_ratio,
            ),
        ],
        "account.initial_margin": [requirement_step, initial_step],
        "account.withdrawable": [
            requirement_step,
            initial_step,
            Step(
                "withdrawable",
                "max(0, {collateral_value} + min(0, {unrealized_pnl}) − {initial_requirement})",
                {
                    "collateral_value": r.collateral_value,
                    "unrealized_pnl": r.unrealized_pnl,
                    "initial_requirement": r.initial,
                },
                r.withdrawable,
            ),
        ],
    }


@dataclass(frozen=True)
class PortfolioLiquidation:
    """A cross position's liquidation price under the portfolio scheme: the price of its
    underlying (every position on it and every holding of it moving together) at which the
    margin balance meets max(tiered MM, stress loss); the term that binds there, and the
    balance and both terms at that price. None where no price reaches it."""

    price: Decimal | None
    binding: str
    margin_balance: Decimal | None = None
    tiered_maintenance: Decimal | None = None
    stress_loss: Decimal | None = None


def _moved(account: AccountInput, asset: str, factor: Decimal) -> AccountInput:
    """The account with the marks of every position on `asset`, and its holdings of `asset`,
    times `factor`."""
    return replace(
        account,
        positions=tuple(
            replace(p, mark_price=p.mark_price * factor) if p.risk_asset == asset else p
            for p in account.positions
        ),
        collateral=tuple(
            replace(line, price=line.price * factor) if line.asset == asset else line
            for line in account.collateral
        ),
    )


def _portfolio_terms(account: AccountInput, model: StressModel, asset: str, factor: Decimal):
    """(margin balance − requirement, binding term, balance, tiered MM, stress loss) with
    `asset` moved by `factor`."""
    moved = _moved(account, asset, factor)
    quote = quote_account(moved)
    stress = account_stress(moved, model, quote=quote)
    requirement, binding = maintenance_requirement(
        scheme=PORTFOLIO, tiered_maintenance=quote.maintenance_margin, stress_loss=stress.worst_loss
    )
    return (
        quote.margin_balance - requirement,
        binding,
        quote.margin_balance,
        quote.maintenance_margin,
        stress.worst_loss,
    )


# The search stops when the price is pinned to this share of the mark (far below any tick).
PRICE_PRECISION = Decimal("1e-10")
# With no tiered liquidation price, the search reaches this far: a 99.99 % fall, a 100× rise.
FARTHEST_FALL, FARTHEST_RISE = Decimal("0.0001"), Decimal(100)
# At the tiered price the balance meets the tiered MM, so the headroom there is 0 where the
# tiered MM binds: its sign is rounding. Only a headroom above this share of the account's
# balance and tiered MM at the mark sends the search past the tiered price (a liquidity
# add-on re-taken at that price can leave real room); both engines read it alike.
TIERED_TIE = Decimal("1e-9")


@exact
def portfolio_liquidation_price(
    account: AccountInput, model: StressModel, position: PositionInput, tiered_price: Decimal | None
) -> PortfolioLiquidation:
    """Decimal reference: bisection on the underlying's price between the mark (where the
    account stands clear, or it is liquidating now) and the tiered liquidation price (where the
    balance meets the tiered MM, so the portfolio requirement, never smaller, is met too). The
    headroom is continuous in the price; the stress loss makes it non-linear, so there is no
    closed form as for the tiered price."""
    asset = position.risk_asset
    now = _portfolio_terms(account, model, asset, ONE)
    if now[0] <= 0:
        return PortfolioLiquidation(position.mark_price, now[1], *now[2:])
    far = None if tiered_price is None else tiered_price / position.mark_price
    tie = TIERED_TIE * (abs(now[2]) + now[3])
    if far is None or _portfolio_terms(account, model, asset, far)[0] > tie:
        exposure = sum(
            (
                p.side * p.quantity
                for p in account.positions
                if p.risk_asset == asset and not p.is_isolated
            ),
            ZERO,
        ) + sum((line.quantity for line in account.collateral if line.asset == asset), ZERO)
        far = FARTHEST_FALL if exposure > 0 else FARTHEST_RISE
        if _portfolio_terms(account, model, asset, far)[0] > 0:
            return PortfolioLiquidation(None, STRESS)
    clear, met = ONE, far  # headroom > 0 at `clear`, ≤ 0 at `met`
    while abs(clear - met) > PRICE_PRECISION:
        middle = (clear + met) / 2
        if _portfolio_terms(account, model, asset, middle)[0] > 0:
            clear = middle
        else:
            met = middle
    found = _portfolio_terms(account, model, asset, met)
    return PortfolioLiquidation(position.mark_price * met, found[1], *found[2:])


def explain_portfolio_liquidation(
    found: PortfolioLiquidation, tiered_price: Decimal | None, asset: str
) -> list:
    """The steps a portfolio account's liquidation price adds to the tiered one's: the price
    of `asset` at which the balance meets the requirement, and which term binds there."""
    from margin.engine.explain import Step

    if found.price is None:
        return [
            Step(
                "liquidation price (portfolio scheme)",
                f"none: no price of {asset} brings the margin balance down to the requirement",
                {},
                None,
            )
        ]
    binds = "the stress loss binds" if found.binding == STRESS else "the tiered MM binds"
    inputs = {
        "margin_balance": found.margin_balance,
        "tiered_maintenance": found.tiered_maintenance,
        "stress_loss": found.stress_loss,
    }
    steps = [
        Step(
            f"requirement at {asset} {found.price:,.2f} (portfolio scheme: {binds})",
            "max({tiered_maintenance}, {stress_loss})",
            {k: inputs[k] for k in ("tiered_maintenance", "stress_loss")},
            max(found.tiered_maintenance, found.stress_loss),
        ),
        Step(
            f"liquidation price (portfolio scheme: {binds}; the tiered price alone "
            + ("is none" if tiered_price is None else f"is {tiered_price:,.2f}")
            + ")",
            f"the price of {asset} (its positions and holdings moving together) at which "
            "{margin_balance} meets the requirement",
            {"margin_balance": found.margin_balance},
            found.price,
        ),
    ]
    return steps

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

`maintenance_requirement` is the one rule; a scheme with more terms (an options grid) joins it
there, in both faces.
"""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.precision import exact
from margin.engine.reference import margin_ratio, withdrawable
from margin.engine.vector import Revaluation

STANDARD = "standard"
PORTFOLIO = "portfolio"
MARGIN_SCHEMES = (STANDARD, PORTFOLIO)
TIERED = "tiered"
STRESS = "stress"


def _check(scheme: str) -> None:
    if scheme not in MARGIN_SCHEMES:
        raise EngineInputError("margin_scheme", f"must be standard or portfolio, got {scheme!r}")


@dataclass(frozen=True)
class Requirement:
    """An account's requirement under its scheme, the term that binds (`tiered` or `stress`)
    and the figures built on it."""

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


@exact
def maintenance_requirement(
    *, scheme: str, tiered_maintenance: Decimal, stress_loss: Decimal | None
) -> tuple[Decimal, str]:
    """standard: the tiered MM. portfolio: max(tiered MM, stress loss); with no stress loss the
    portfolio scheme cannot be computed and is refused (fail closed, never the smaller)."""
    _check(scheme)
    if scheme == STANDARD:
        return tiered_maintenance, TIERED
    if stress_loss is None:
        raise EngineInputError("stress_loss", "the portfolio scheme needs a stress loss")
    if stress_loss > tiered_maintenance:
        return stress_loss, STRESS
    return tiered_maintenance, TIERED


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
) -> Requirement:
    """Decimal reference of `scheme_figures` for one cross pool."""
    if margin_call_ratio <= 0:
        raise EngineInputError("margin_call_ratio", "must be positive")
    maintenance, binding = maintenance_requirement(
        scheme=scheme, tiered_maintenance=tiered_maintenance, stress_loss=stress_loss
    )
    initial = tiered_initial
    if scheme == PORTFOLIO:
        initial = max(tiered_initial, maintenance / margin_call_ratio)
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


def scheme_figures(
    revaluation: Revaluation,
    stress_loss: np.ndarray,
    portfolio: np.ndarray,
    *,
    margin_call_ratio: float,
) -> SchemeFigures:
    """Vectorized `account_requirement` over a book: `portfolio` marks the accounts under the
    portfolio scheme, `stress_loss` their worst loss (nan where there is none: a portfolio
    account without one is refused, as in the reference)."""
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
    return SchemeFigures(
        maintenance=maintenance,
        stress_binds=stress_binds,
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
    if r.scheme == STANDARD:
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
    binds = "the stress loss binds" if r.binding == STRESS else "the tiered MM binds"
    ratio_formula = "{requirement} ÷ {margin_balance}"
    if r.margin_ratio is None:
        ratio_formula += " (none: the margin balance is not positive)"
    inputs = {"tiered_maintenance": r.tiered_maintenance, "stress_loss": r.stress_loss}
    requirement_step = Step(
        f"maintenance requirement (portfolio scheme: {binds})",
        "max({tiered_maintenance}, {stress_loss})",
        inputs,
        r.maintenance,
    )
    initial_step = Step(
        "initial requirement",
        "max({tiered_initial}, {requirement} ÷ {margin_call_ratio})",
        {
            "tiered_initial": r.tiered_initial,
            "requirement": r.maintenance,
            "margin_call_ratio": margin_call_ratio,
        },
        r.initial,
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

"""One validator for a whole risk parameter version, before anything is stored or applied.

A version that passes cannot halt the engine: every revaluation shard, stress run and
liquidation plan accepts it, and every number fits the database column that will hold it. The
column limits come in as plain values (`NumberLimit`), so this module stays free of Django.

The rules, and whose published practice each follows:

- thresholds: 0 < warning < margin call < liquidation (Binance, Bybit and OKX all move an
  account through rising margin-ratio lines; a line out of order would skip a state), the
  hysteresis band below the warning line (else an account never leaves a state);
- the liquidation target: 0 < target < liquidation and target ≤ 1 (Binance's partial
  liquidation reduces a position until the margin ratio is back under the line; a target at or
  above the line, or of 0, leaves `liquidation_plan` nothing to solve);
- fee and slippage: each in [0, 1), and their sum below 1 (a liquidation may not cost the
  whole notional, `liquidation_plan`'s `slippage`);
- brackets (Binance USD-M leverage brackets): within each bracket IM ≥ MM, i.e.
  1 / max_leverage ≥ mmr × the largest credit-tier mm_scale, so a position opened at full
  leverage is not already below maintenance; mmr never falls and max leverage never rises
  with size; cum is derived (`BracketTable`), so MM is continuous at every floor;
- haircut tiers (Binance multi-assets mode / Bitget tiered collateral ratios): floors from 0
  and rising, ratios in [0, 1] and non-increasing with size (a bigger holding never counts a
  larger share);
- credit tiers: haircut_scale and mm_scale > 0, and mm_scale × the top mmr < 1 (the engine's
  own rule: MM may not reach the notional);
- stress (EWMA covariance, k σ over a horizon): 0 < λ < 1, k σ > 0, horizon > 0; each
  asset's published volatility floor (daily σ) in (0, 1): a floor of 0 would let an asset
  with no history stress to nothing, the very failure the floor exists to close;
- price guard: a positive move band and a positive age limit, a quorum of at least two sources
  (Binance's index never rests on one venue), an agreement band in (0, 1) and a source cap in
  (0, 1]; the vol guard's move band positive (0 would freeze every option's vol).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from margin.engine.errors import EngineInputError
from margin.engine.precision import exact
from margin.engine.types import ONE, ZERO, BracketTable, CreditTier, HaircutTier

__all__ = [
    "NumberLimit",
    "ParameterProblem",
    "ParameterVersionInput",
    "parameter_problems",
    "validate_parameter_version",
]

SCALAR_NAMES = (
    "warning_ratio",
    "margin_call_ratio",
    "liquidation_ratio",
    "hysteresis",
    "liquidation_target_ratio",
    "liquidation_fee_rate",
    "liquidation_slippage",
    "taker_fee_rate",
    "price_guard_max_move",
    "price_guard_max_age_s",
    "price_guard_min_sources",
    "price_guard_agreement_band",
    "price_guard_source_cap",
    "vol_guard_max_move",
    "stale_materiality_share",
    "stale_price_haircut",
    "margin_call_deadline_s",
    "stress_ewma_lambda",
    "stress_k_sigma",
    "stress_horizon_days",
    "liquidity_impact_coefficient",
    "concentration_limit_share",
    "concentration_floor_usd",
)


@dataclass(frozen=True)
class NumberLimit:
    """What a column stores: a decimal of `max_digits` digits, `decimal_places` of them after
    the point, or (decimal_places None) a whole number up to `maximum`."""

    max_digits: int | None = None
    decimal_places: int | None = None
    maximum: int | None = None

    def problem(self, value: Decimal | int) -> str | None:
        value = Decimal(value)
        if not value.is_finite():
            return f"must be a finite number, got {value}"
        if self.decimal_places is None:
            if value != value.to_integral_value():
                return f"must be a whole number, got {value}"
            if self.maximum is not None and abs(value) > self.maximum:
                return f"must be at most {self.maximum:,}, got {value}"
            return None
        places = max(0, -value.normalize().as_tuple().exponent)
        if places > self.decimal_places:
            return f"at most {self.decimal_places} decimal places are stored, got {value}"
        whole_digits = self.max_digits - self.decimal_places
        if abs(value) >= Decimal(10) ** whole_digits:
            return f"must be below {Decimal(10) ** whole_digits:,} (what is stored), got {value}"
        return None


@dataclass(frozen=True)
class ParameterVersionInput:
    """A whole version as the engine sees it: its scalars by name, a bracket table per
    instrument, haircut tiers per asset, credit terms per tier code."""

    scalars: Mapping[str, Decimal | int]
    brackets: Mapping[str, BracketTable]
    haircuts: Mapping[str, Sequence[HaircutTier]]
    credit_tiers: Mapping[str, CreditTier]
    volatility_floors: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class ParameterProblem:
    """One broken rule: the field (`stress_k_sigma`, `brackets.BTCUSDT[2].mmr`) and why."""

    field: str
    message: str


def _scalar_problems(scalars: Mapping[str, Decimal | int]) -> list[ParameterProblem]:
    problems = []
    value = {name: Decimal(scalars[name]) for name in SCALAR_NAMES if name in scalars}
    for name in SCALAR_NAMES:
        if name not in value:
            problems.append(ParameterProblem(name, "missing"))
    if problems:
        return problems

    def refuse(name: str, message: str) -> None:
        problems.append(ParameterProblem(name, message))

    warning, call = value["warning_ratio"], value["margin_call_ratio"]
    liquidation, target = value["liquidation_ratio"], value["liquidation_target_ratio"]
    if not ZERO < warning < call < liquidation:
        refuse(
            "warning_ratio",
            f"thresholds must rise from above 0: warning {warning} < margin call {call} "
            f"< liquidation {liquidation}",
        )
    if not ZERO <= value["hysteresis"] < warning:
        refuse("hysteresis", f"must lie in [0, warning {warning}), got {value['hysteresis']}")
    if not ZERO < target < liquidation:
        refuse(
            "liquidation_target_ratio",
            f"a liquidation reduces the ratio to the target: it must lie above 0 and below "
            f"the liquidation ratio {liquidation}, got {target}",
        )
    elif target > ONE:
        refuse("liquidation_target_ratio", f"must be at most 1, got {target}")
    for name in ("liquidation_fee_rate", "liquidation_slippage", "taker_fee_rate"):
        if not ZERO <= value[name] < ONE:
            refuse(name, f"must lie in [0, 1), got {value[name]}")
    cost = value["liquidation_fee_rate"] + value["liquidation_slippage"]
    if cost >= ONE:
        refuse("liquidation_slippage", f"fee + slippage must stay below 1, got {cost}")
    if not ZERO < value["stress_ewma_lambda"] < ONE:
        refuse("stress_ewma_lambda", f"λ must lie in (0, 1), got {value['stress_ewma_lambda']}")
    for name in (
        "stress_k_sigma",
        "stress_horizon_days",
        "price_guard_max_move",
        "price_guard_max_age_s",
        "vol_guard_max_move",
    ):
        if value[name] <= 0:
            refuse(name, f"must be positive, got {value[name]}")
    if value["price_guard_min_sources"] < 2:
        refuse(
            "price_guard_min_sources",
            "an index needs at least two agreeing sources (one venue alone could move it), got "
            f"{value['price_guard_min_sources']}",
        )
    if not ZERO < value["price_guard_agreement_band"] < ONE:
        refuse(
            "price_guard_agreement_band",
            f"must lie in (0, 1), got {value['price_guard_agreement_band']}",
        )
    if not ZERO <= value["stale_materiality_share"] <= ONE:
        refuse(
            "stale_materiality_share",
            f"a share of MM or margin balance: must lie in [0, 1], got "
            f"{value['stale_materiality_share']}",
        )
    if not ZERO <= value["stale_price_haircut"] < ONE:
        refuse("stale_price_haircut", f"must lie in [0, 1), got {value['stale_price_haircut']}")
    if value["margin_call_deadline_s"] <= 0:
        refuse(
            "margin_call_deadline_s",
            f"must be positive, got {value['margin_call_deadline_s']}",
        )
    if not ZERO <= value["liquidity_impact_coefficient"] <= 10:
        refuse(
            "liquidity_impact_coefficient",
            "Y of the square-root law is of order 1 (0.5 to 1 measured): must lie in [0, 10], "
            f"got {value['liquidity_impact_coefficient']}",
        )
    if not ZERO < value["concentration_limit_share"] <= ONE:
        refuse(
            "concentration_limit_share",
            f"a share of open interest: must lie in (0, 1], got "
            f"{value['concentration_limit_share']}",
        )
    if value["concentration_floor_usd"] < 0:
        refuse(
            "concentration_floor_usd", f"must be at least 0, got {value['concentration_floor_usd']}"
        )
    if not ZERO < value["price_guard_source_cap"] <= ONE:
        refuse(
            "price_guard_source_cap", f"must lie in (0, 1], got {value['price_guard_source_cap']}"
        )
    return problems


def _bracket_problems(
    symbol: str, table: BracketTable, top_mm_scale: Decimal
) -> list[ParameterProblem]:
    problems = []
    for n, bracket in enumerate(table.brackets):
        where = f"brackets.{symbol}[{n}]"
        im_rate = ONE / bracket.max_leverage
        if bracket.mmr * top_mm_scale > im_rate:
            problems.append(
                ParameterProblem(
                    f"{where}.max_leverage",
                    f"IM must cover MM: 1 / max leverage {bracket.max_leverage} = {im_rate:.6g} "
                    f"is below mmr {bracket.mmr} × the largest credit mm_scale {top_mm_scale}",
                )
            )
        if n and bracket.max_leverage > table.brackets[n - 1].max_leverage:
            problems.append(
                ParameterProblem(
                    f"{where}.max_leverage",
                    f"may not rise with size: {bracket.max_leverage} above the previous "
                    f"{table.brackets[n - 1].max_leverage}",
                )
            )
    return problems


def _haircut_problems(symbol: str, tiers: Sequence[HaircutTier]) -> list[ParameterProblem]:
    problems = []
    for n, tier in enumerate(tiers):
        where = f"haircuts.{symbol}[{n}]"
        if not ZERO <= tier.ratio <= ONE:
            problems.append(
                ParameterProblem(f"{where}.ratio", f"must lie in [0, 1], got {tier.ratio}")
            )
        if n == 0 and tier.floor != 0:
            problems.append(ParameterProblem(f"{where}.floor", f"must be 0, got {tier.floor}"))
        if n and tier.floor <= tiers[n - 1].floor:
            problems.append(
                ParameterProblem(
                    f"{where}.floor", f"floors must rise: {tier.floor} after {tiers[n - 1].floor}"
                )
            )
        if n and tier.ratio > tiers[n - 1].ratio:
            problems.append(
                ParameterProblem(
                    f"{where}.ratio",
                    f"may not rise with size: {tier.ratio} above the previous {tiers[n - 1].ratio}",
                )
            )
    return problems


def _credit_problems(code: str, tier: CreditTier, top_mmr: Decimal) -> list[ParameterProblem]:
    problems = []
    for name in ("haircut_scale", "mm_scale"):
        if getattr(tier, name) <= 0:
            problems.append(
                ParameterProblem(
                    f"credit_terms.{code}.{name}", f"must be positive, got {getattr(tier, name)}"
                )
            )
    if tier.mm_scale * top_mmr >= ONE:
        problems.append(
            ParameterProblem(
                f"credit_terms.{code}.mm_scale",
                f"{tier.mm_scale} × the top mmr {top_mmr} reaches 1: MM would exceed the notional",
            )
        )
    return problems


def _limit_problems(
    version: ParameterVersionInput, limits: Mapping[str, NumberLimit]
) -> list[ParameterProblem]:
    """Every number against its column: scalars by their own name, child rows by
    `bracket.floor`, `bracket.mmr`, `bracket.max_leverage`, `haircut.floor`, `haircut.ratio`,
    `credit.haircut_scale`, `credit.mm_scale`."""
    checks: list[tuple[str, str, Decimal | int]] = [
        (name, name, value) for name, value in version.scalars.items()
    ]
    for symbol, table in version.brackets.items():
        for n, bracket in enumerate(table.brackets):
            for name in ("floor", "mmr", "max_leverage"):
                checks.append(
                    (f"brackets.{symbol}[{n}].{name}", f"bracket.{name}", getattr(bracket, name))
                )
    for symbol, tiers in version.haircuts.items():
        for n, tier in enumerate(tiers):
            for name in ("floor", "ratio"):
                checks.append(
                    (f"haircuts.{symbol}[{n}].{name}", f"haircut.{name}", getattr(tier, name))
                )
    for code, tier in version.credit_tiers.items():
        for name in ("haircut_scale", "mm_scale"):
            checks.append((f"credit_terms.{code}.{name}", f"credit.{name}", getattr(tier, name)))
    for asset, floor in version.volatility_floors.items():
        checks.append((f"volatility_floors.{asset}", "volatility.daily_vol", floor))
    problems = []
    for name, column, value in checks:
        limit = limits.get(column)
        message = None if limit is None else limit.problem(value)
        if message:
            problems.append(ParameterProblem(name, message))
    return problems


def _floor_problems(floors: Mapping[str, Decimal]) -> list[ParameterProblem]:
    return [
        ParameterProblem(f"volatility_floors.{asset}", f"a daily σ must lie in (0, 1), got {floor}")
        for asset, floor in floors.items()
        if not ZERO < floor < ONE
    ]


@exact
def parameter_problems(
    version: ParameterVersionInput, *, limits: Mapping[str, NumberLimit] | None = None
) -> list[ParameterProblem]:
    """Every rule `version` breaks (module docstring), empty when it is sound; `limits` are the
    columns' (see `_limit_problems`)."""
    problems = _limit_problems(version, limits or {})
    problems += _scalar_problems(version.scalars)
    mm_scales = [tier.mm_scale for tier in version.credit_tiers.values()] or [ONE]
    top_mm_scale = max(mm_scales)
    for symbol, table in version.brackets.items():
        problems += _bracket_problems(symbol, table, top_mm_scale)
    for symbol, tiers in version.haircuts.items():
        problems += _haircut_problems(symbol, tiers)
    top_mmr = max((table.brackets[-1].mmr for table in version.brackets.values()), default=ZERO)
    for code, tier in version.credit_tiers.items():
        problems += _credit_problems(code, tier, top_mmr)
    problems += _floor_problems(version.volatility_floors)
    return problems


def validate_parameter_version(
    version: ParameterVersionInput, *, limits: Mapping[str, NumberLimit] | None = None
) -> None:
    """Raise `EngineInputError` naming the first broken rule (its `problems` attribute holds
    all of them); return quietly for a sound version. The one check every path that writes
    or applies a version calls: proposals, their approval, the API, `run_scenario`."""
    problems = parameter_problems(version, limits=limits)
    if problems:
        error = EngineInputError(problems[0].field, problems[0].message)
        error.problems = problems
        raise error

"""The engine's validator of a whole parameter version (issue 15 item 3): each rule, and the
repros that halted risk processing or gave a 500 at approval."""

from decimal import Decimal

import pytest

from margin.engine.demo import ASSETS, CREDIT_TIERS, INSTRUMENTS
from margin.engine.errors import EngineInputError
from margin.engine.parameters import (
    NumberLimit,
    ParameterVersionInput,
    parameter_problems,
    validate_parameter_version,
)
from margin.engine.types import BracketTable, CreditTier, HaircutTier

# The seed's version 1 (margin/models/reference.py defaults) and its column sizes.
SOUND_SCALARS = {
    "warning_ratio": Decimal("0.5"),
    "margin_call_ratio": Decimal("0.8"),
    "liquidation_ratio": Decimal("1"),
    "hysteresis": Decimal("0.05"),
    "liquidation_target_ratio": Decimal("0.7"),
    "liquidation_fee_rate": Decimal("0.005"),
    "liquidation_slippage": Decimal("0.002"),
    "taker_fee_rate": Decimal("0.0005"),
    "price_guard_max_move": Decimal("0.10"),
    "price_guard_max_age_s": 30,
    "price_guard_min_sources": 2,
    "price_guard_agreement_band": Decimal("0.02"),
    "price_guard_source_cap": Decimal("0.05"),
    "vol_guard_max_move": Decimal("0.10"),
    "stale_materiality_share": Decimal("0.05"),
    "stale_price_haircut": Decimal("0.1"),
    "margin_call_deadline_s": 3600,
    "stress_ewma_lambda": Decimal("0.94"),
    "stress_k_sigma": Decimal("3"),
    "stress_horizon_days": Decimal("1"),
    "liquidity_impact_coefficient": Decimal("1"),
    "concentration_limit_share": Decimal("0.25"),
    "concentration_floor_usd": Decimal("50000000"),
}
RATIO = NumberLimit(max_digits=20, decimal_places=12)
MONEY = NumberLimit(max_digits=38, decimal_places=18)
POSITIVE_INTEGER = NumberLimit(maximum=2_147_483_647)
LIMITS = {
    **{name: RATIO for name in SOUND_SCALARS},
    "price_guard_max_age_s": POSITIVE_INTEGER,
    "price_guard_min_sources": POSITIVE_INTEGER,
    "margin_call_deadline_s": POSITIVE_INTEGER,
    "bracket.floor": MONEY,
    "bracket.mmr": RATIO,
    "bracket.max_leverage": NumberLimit(max_digits=10, decimal_places=2),
    "haircut.floor": MONEY,
    "haircut.ratio": RATIO,
    "credit.haircut_scale": RATIO,
    "credit.mm_scale": RATIO,
}


def version(**changes) -> ParameterVersionInput:
    """The demo market's version with `scalars`, `brackets`, `haircuts` or `credit_tiers`
    entries replaced."""
    return ParameterVersionInput(
        scalars={**SOUND_SCALARS, **changes.get("scalars", {})},
        brackets={
            **{symbol: table for symbol, (_, table) in INSTRUMENTS.items()},
            **changes.get("brackets", {}),
        },
        haircuts={
            **{asset: tiers for asset, (_, _, tiers) in ASSETS.items()},
            **changes.get("haircuts", {}),
        },
        credit_tiers={
            **{f"tier{n}": tier for n, tier in enumerate(CREDIT_TIERS)},
            **changes.get("credit_tiers", {}),
        },
    )


def fields(candidate: ParameterVersionInput) -> set[str]:
    return {problem.field for problem in parameter_problems(candidate, limits=LIMITS)}


def test_the_demo_version_is_sound():
    assert parameter_problems(version(), limits=LIMITS) == []
    validate_parameter_version(version(), limits=LIMITS)


# The issue's repros: each was accepted by the old ≥ 0 check.
REPROS = {
    # every revaluation shard raised (build_scenarios: k and horizon must be positive)
    "stress_k_sigma = 0": ({"stress_k_sigma": Decimal(0)}, "stress_k_sigma"),
    "horizon 0": ({"stress_horizon_days": Decimal(0)}, "stress_horizon_days"),
    # every liquidation raised (liquidation_plan: target must lie in (0, 1])
    "target ratio 0": ({"liquidation_target_ratio": Decimal(0)}, "liquidation_target_ratio"),
    "liquidation above the target, target above 1": (
        {"liquidation_ratio": Decimal("1.5"), "liquidation_target_ratio": Decimal("1.2")},
        "liquidation_target_ratio",
    ),
    # liquidity: no negative impact, a concentration limit is a share of open interest
    "impact coefficient -1": (
        {"liquidity_impact_coefficient": Decimal(-1)},
        "liquidity_impact_coefficient",
    ),
    "concentration limit 0": (
        {"concentration_limit_share": Decimal(0)},
        "concentration_limit_share",
    ),
    "concentration limit 1.5": (
        {"concentration_limit_share": Decimal("1.5")},
        "concentration_limit_share",
    ),
    "concentration floor -1": ({"concentration_floor_usd": Decimal(-1)}, "concentration_floor_usd"),
    # values the database cannot store: a 500 at approval
    "stress_k_sigma 1e11": ({"stress_k_sigma": Decimal("1e11")}, "stress_k_sigma"),
    "guard age 99,999,999,999 s": (
        {"price_guard_max_age_s": 99_999_999_999},
        "price_guard_max_age_s",
    ),
}


@pytest.mark.parametrize("name", sorted(REPROS))
def test_issue_repro_is_refused(name):
    scalars, field = REPROS[name]
    with pytest.raises(EngineInputError) as refused:
        validate_parameter_version(version(scalars=scalars), limits=LIMITS)
    assert field in {problem.field for problem in refused.value.problems}


def test_max_leverage_the_column_cannot_store_is_refused():
    table = BracketTable.build(
        [{"floor": Decimal(0), "mmr": Decimal("0.004"), "max_leverage": Decimal(99_999_999_999)}]
    )
    assert "brackets.BTCUSDT[0].max_leverage" in fields(version(brackets={"BTCUSDT": table}))


def test_im_below_mm_is_refused():
    # 1 / 200 = 0.5 % of IM against 0.6 % of MM: a position opened at full leverage would be
    # liquidated at once. Binance's own table keeps 1 / max leverage above mmr in every bracket.
    table = BracketTable.build(
        [{"floor": Decimal(0), "mmr": Decimal("0.006"), "max_leverage": Decimal(200)}]
    )
    assert "brackets.BTCUSDT[0].max_leverage" in fields(version(brackets={"BTCUSDT": table}))


def test_im_must_cover_mm_at_the_strictest_credit_tier():
    # 1 / 125 = 0.8 % covers 0.4 % × 1.25 but not 0.4 % × 2.5.
    strict = CreditTier(haircut_scale=Decimal(1), mm_scale=Decimal("2.5"))
    assert "brackets.BTCUSDT[0].max_leverage" in fields(version(credit_tiers={"strict": strict}))


def test_max_leverage_rising_with_size_is_refused():
    table = BracketTable.build(
        [
            {"floor": Decimal(0), "mmr": Decimal("0.004"), "max_leverage": Decimal(50)},
            {"floor": Decimal(50000), "mmr": Decimal("0.005"), "max_leverage": Decimal(100)},
        ]
    )
    assert "brackets.BTCUSDT[1].max_leverage" in fields(version(brackets={"BTCUSDT": table}))


def test_haircut_ratios_rising_with_size_are_refused():
    rising = (HaircutTier(Decimal(0), Decimal("0.8")), HaircutTier(Decimal(1000), Decimal("0.9")))
    assert "haircuts.BTC[1].ratio" in fields(version(haircuts={"BTC": rising}))


@pytest.mark.parametrize("ratio", ["-0.1", "1.2"])
def test_haircut_ratio_outside_zero_one_is_refused(ratio):
    tiers = (HaircutTier(Decimal(0), Decimal(ratio)),)
    assert "haircuts.BTC[0].ratio" in fields(version(haircuts={"BTC": tiers}))


def test_haircut_floors_must_start_at_zero_and_rise():
    tiers = (HaircutTier(Decimal(10), Decimal("0.9")), HaircutTier(Decimal(5), Decimal("0.8")))
    assert {"haircuts.BTC[0].floor", "haircuts.BTC[1].floor"} <= fields(
        version(haircuts={"BTC": tiers})
    )


def test_a_haircut_scale_of_zero_is_refused():
    # It would turn every haircut off for the tier: max(0, 1 − 0 × (1 − r)) = 1.
    tier = CreditTier(haircut_scale=Decimal(0), mm_scale=Decimal(1))
    assert "credit_terms.bad.haircut_scale" in fields(version(credit_tiers={"bad": tier}))


def test_an_mm_scale_taking_the_top_mmr_to_1_is_refused():
    # Binance's top bracket asks 50 %: × 2 reaches the whole notional.
    tier = CreditTier(haircut_scale=Decimal(1), mm_scale=Decimal(2))
    assert "credit_terms.bad.mm_scale" in fields(version(credit_tiers={"bad": tier}))


@pytest.mark.parametrize(
    ("scalars", "field"),
    [
        ({"warning_ratio": Decimal("0.9")}, "warning_ratio"),
        ({"margin_call_ratio": Decimal("1")}, "warning_ratio"),
        ({"warning_ratio": Decimal(0)}, "warning_ratio"),
        ({"hysteresis": Decimal("0.6")}, "hysteresis"),
        ({"liquidation_target_ratio": Decimal(1)}, "liquidation_target_ratio"),
        (
            {"liquidation_fee_rate": Decimal("0.6"), "liquidation_slippage": Decimal("0.5")},
            "liquidation_slippage",
        ),
        ({"taker_fee_rate": Decimal(1)}, "taker_fee_rate"),
        ({"stress_ewma_lambda": Decimal(1)}, "stress_ewma_lambda"),
        ({"price_guard_max_move": Decimal(0)}, "price_guard_max_move"),
        ({"price_guard_max_age_s": 0}, "price_guard_max_age_s"),
        ({"price_guard_min_sources": 1}, "price_guard_min_sources"),
        ({"stale_materiality_share": Decimal("1.5")}, "stale_materiality_share"),
        ({"stale_price_haircut": Decimal(1)}, "stale_price_haircut"),
        ({"margin_call_deadline_s": 0}, "margin_call_deadline_s"),
        ({"price_guard_agreement_band": Decimal(0)}, "price_guard_agreement_band"),
        ({"price_guard_agreement_band": Decimal(1)}, "price_guard_agreement_band"),
        ({"price_guard_source_cap": Decimal(0)}, "price_guard_source_cap"),
        ({"price_guard_source_cap": Decimal("1.5")}, "price_guard_source_cap"),
        ({"vol_guard_max_move": Decimal(0)}, "vol_guard_max_move"),
        ({"stress_k_sigma": Decimal("0.0000000000001")}, "stress_k_sigma"),
    ],
)
def test_each_scalar_rule(scalars, field):
    assert field in fields(version(scalars=scalars))


def test_no_django_needed_for_limits():
    assert NumberLimit(max_digits=20, decimal_places=12).problem(Decimal("99999999.5")) is None
    assert "below" in NumberLimit(max_digits=20, decimal_places=12).problem(Decimal("1e8"))
    assert "whole" in POSITIVE_INTEGER.problem(Decimal("1.5"))

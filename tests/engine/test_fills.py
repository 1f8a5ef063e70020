"""The fill rules (one-way mode), the forced fill's price and the withdrawable, without a
database."""

from decimal import ROUND_DOWN, Decimal

import pytest

from margin.engine.fills import closing_side, fill_math, max_withdrawal, slipped_price
from margin.engine.types import HaircutTier

D = Decimal


@pytest.mark.parametrize(
    ("quantity", "entry", "delta", "price", "expected"),
    [
        ("0", "0", "2", "100", ("open", "2", "100", "0")),
        ("2", "100", "2", "110", ("increase", "4", "105", "0")),
        ("-3", "100", "-1", "120", ("increase", "-4", "105", "0")),
        ("4", "100", "-1", "110", ("reduce", "3", "100", "10")),
        ("-4", "100", "1", "110", ("reduce", "-3", "100", "-10")),
        ("4", "100", "-4", "90", ("close", "0", "0", "-40")),
        ("2", "100", "-5", "120", ("flip", "-3", "120", "40")),
    ],
)
def test_fill_math_follows_one_way_mode(quantity, entry, delta, price, expected):
    math = fill_math(quantity=D(quantity), entry_price=D(entry), delta=D(delta), price=D(price))
    assert (math.kind, math.quantity, math.entry_price, math.realized_pnl) == (
        expected[0],
        D(expected[1]),
        D(expected[2]),
        D(expected[3]),
    )


def test_a_forced_fill_is_priced_against_the_position_to_eight_decimals():
    mark = D("95123.456789012345678901")
    assert slipped_price(mark, D("0.1"), D("0.002")) == D("94933.20987543")
    assert slipped_price(mark, D("-0.1"), D("0.002")) == D("95313.70370259")
    assert closing_side(D("0.1")) == "sell"
    assert closing_side(D("-0.1")) == "buy"


BTC_TIERS = (HaircutTier(floor=D(0), ratio=D("0.95")), HaircutTier(floor=D(100000), ratio=D("0.9")))


def withdrawable(balance, free, tiers=BTC_TIERS, price="100000", scale="1"):
    return max_withdrawal(
        balance=D(balance),
        price=D(price),
        free_collateral=D(free),
        haircut_tiers=tiers,
        haircut_scale=D(scale),
    )


@pytest.mark.parametrize(
    ("balance", "free"), [("0", "1000"), ("-1", "1000"), ("2", "0"), ("2", "-5")]
)
def test_nothing_leaves_an_empty_wallet_or_a_pool_without_free_collateral(balance, free):
    assert withdrawable(balance, free) == 0


def test_the_top_tier_leaves_first():
    # 2 BTC at 100,000: 100,000 counted at 0.95, the next 100,000 at 0.9; 50,000 free
    # releases 50,000 / 0.9 of the top tier's value
    assert withdrawable("2", "50000") == (D(50000) / D("0.9") / D(100000)).quantize(
        D("1e-18"), ROUND_DOWN
    )


def test_a_tier_used_up_hands_the_rest_of_the_free_collateral_to_the_next():
    # the top tier's 100,000 takes 90,000 of the 95,000 free; the 5,000 left releases
    # 5,000 / 0.95 of the lower tier
    released = D(100000) + D(5000) / D("0.95")
    assert withdrawable("2", "95000") == (released / D(100000)).quantize(D("1e-18"), ROUND_DOWN)


def test_never_more_than_the_wallet_holds():
    assert withdrawable("2", "1e12") == D(2)


def test_an_asset_without_tiers_counts_in_full_and_a_zero_ratio_leaves_freely():
    assert withdrawable("10000", "3000", tiers=(), price="1") == D(3000)
    worthless = (HaircutTier(floor=D(0), ratio=D(0)),)
    assert withdrawable("5", "1", tiers=worthless, price="10") == D(5)


def test_the_credit_tier_scales_the_haircut():
    # a haircut scale of 2 turns a 0.95 ratio into 0.9
    one_tier = (HaircutTier(floor=D(0), ratio=D("0.95")),)
    assert withdrawable("1", "45000", tiers=one_tier, scale="2") == D("0.5")

"""The index and mark rules (`margin.engine.prices`) against the venues' published rules.

Sources: Binance USDⓈ-M Price Index (https://www.binance.com/en/support/faq/360033525071): a
source more than 5% from the median of all sources is capped at median × (1 ± 5%); a source
with no update for 10 s weighs zero. Binance Mark Price in Perpetual Futures
(https://www.binance.com/en/support/faq/fff6ec1b3f5845d19f1fb924644a0877): mark = median(Price
1, Price 2, contract price), Price 1 = index × (1 + last funding rate × time until funding ÷ 8 h),
Price 2 = index + moving average of the basis.
"""

from decimal import Decimal
from statistics import median

import pytest
from hypothesis import given
from hypothesis import strategies as st

from margin.engine.precision import engine_context
from margin.engine.prices import (
    BASIS,
    CAPPED,
    FUNDING,
    LAST,
    MOVE,
    NO_QUORUM,
    STALE,
    IndexRules,
    SourcePrice,
    capped_to_median,
    funding_basis_price,
    index_price,
    mark_price,
    seconds_to_funding,
)

RULES = IndexRules(
    max_age_s=10,
    max_move=Decimal("0.10"),
    source_cap=Decimal("0.05"),
    agreement_band=Decimal("0.02"),
    min_sources=2,
)


def fresh(*prices, age_s=0.0):
    return [SourcePrice(f"venue-{i}", Decimal(str(p)), age_s) for i, p in enumerate(prices)]


def test_binance_example_a_source_7_percent_over_the_median_counts_at_plus_5_percent():
    # Binance's worked example with its 5% cap: median 20,000, +7% counts at 21,000, −6% at 19,000
    assert capped_to_median(Decimal("21400"), Decimal("20000"), Decimal("0.05")) == 21000
    assert capped_to_median(Decimal("18800"), Decimal("20000"), Decimal("0.05")) == 19000
    assert capped_to_median(Decimal("20500"), Decimal("20000"), Decimal("0.05")) == 20500


def test_a_source_far_from_the_median_is_capped_and_the_index_averages_what_counts():
    # when: 100,000, 100,000 and 92,000 (8% under the median, inside the 10% move limit)
    result = index_price(fresh(100000, 100000, 92000), last_index=Decimal(100000), rules=RULES)
    # then: 92,000 counts at 95,000; index (100,000 + 100,000 + 95,000) / 3
    with engine_context():  # the engine divides at 50 digits
        assert result.price == Decimal(295000) / 3
    assert result.uncertain == ""
    (verdict,) = result.verdicts
    assert (verdict.source, verdict.reason, verdict.counted_at) == ("venue-2", CAPPED, 95000)


def test_a_source_silent_past_the_age_limit_weighs_zero():
    # given: venue-2 printed 99,000 eleven seconds ago (limit 10 s)
    sources = [*fresh(100000, 100100), SourcePrice("venue-2", Decimal(99000), 11.0)]
    # when
    result = index_price(sources, last_index=Decimal(100000), rules=RULES)
    # then: only the two fresh venues count
    assert result.price == Decimal(100050)
    assert [(v.source, v.reason) for v in result.verdicts] == [("venue-2", STALE)]
    assert dict(result.counted) == {"venue-0": 100000, "venue-1": 100100}


def test_one_fresh_source_is_no_quorum_the_last_index_holds_uncertain():
    # when: one venue left, printing −9%
    result = index_price(fresh(91000), last_index=Decimal(100000), rules=RULES)
    # then
    assert result.price == Decimal(100000)
    assert result.held and result.uncertain == "1 fresh source(s), 2 needed"
    assert [v.reason for v in result.verdicts] == [NO_QUORUM]


def test_two_fresh_sources_that_disagree_are_no_quorum():
    # when: 100,000 and 91,000 (each 4.7% from their median, band 2%)
    result = index_price(fresh(100000, 91000), last_index=Decimal(100000), rules=RULES)
    # then
    assert result.price == Decimal(100000)
    assert result.uncertain == "sources disagree: 0 of 2 within 2% of their median, 2 needed"


def test_a_move_every_source_agrees_on_passes_through():
    # when: all three venues 12% lower (past the 10% move limit, but all of them)
    result = index_price(fresh(88000, 88010, 87990), last_index=Decimal(100000), rules=RULES)
    # then
    assert result.price == Decimal(88000)
    assert result.uncertain == "" and result.verdicts == ()


def test_one_source_past_the_move_limit_alone_is_left_out():
    result = index_price(fresh(100000, 100010, 150000), last_index=Decimal(100000), rules=RULES)
    assert result.price == Decimal(100005)
    assert [(v.source, v.reason) for v in result.verdicts] == [("venue-2", MOVE)]


def test_no_quorum_and_no_last_index_gives_no_price():
    result = index_price(fresh(100000), last_index=None, rules=RULES)
    assert result.price is None and result.held


prices = st.decimals(min_value=1, max_value=1_000_000, places=2)


@given(st.lists(prices, min_size=2, max_size=8), prices)
def test_every_source_counts_within_the_cap_of_the_median_whatever_one_prints(honest, liar):
    """Binance's cap: each counted price lies within 5% of the median of all the sources, so
    one source of n moves the index by at most 5% of the median ÷ n."""
    rules = IndexRules(
        max_age_s=10,
        max_move=Decimal(1000),
        source_cap=Decimal("0.05"),
        agreement_band=Decimal(1000),
        min_sources=1,
    )
    result = index_price(fresh(*honest, liar), last_index=None, rules=rules)
    middle = median([*honest, liar])
    counted = dict(result.counted)
    assert len(counted) == len(honest) + 1
    assert all(abs(price - middle) <= rules.source_cap * middle for price in counted.values())
    with engine_context():
        assert result.price == sum(counted.values()) / len(counted)


def test_funding_basis_price_is_binance_price_1():
    # index 100,000, last funding rate 0.01%, 4 h of 8 h until funding: 100,000 × 1.00005
    price = funding_basis_price(
        Decimal(100000), funding_rate=Decimal("0.0001"), seconds_until_funding=Decimal(4 * 3600)
    )
    assert price == Decimal("100005.0000")


def test_seconds_to_funding_counts_to_the_next_8_hour_mark():
    assert seconds_to_funding(0) == 8 * 3600
    assert seconds_to_funding(7 * 3600 + 1800) == 1800
    assert seconds_to_funding(8 * 3600) == 8 * 3600


def mark(*, basis, funding_rate, last):
    return mark_price(
        index=Decimal(100000),
        basis=Decimal(basis),
        funding_rate=Decimal(funding_rate),
        seconds_until_funding=Decimal(8 * 3600),
        last_price=None if last is None else Decimal(last),
    )


@pytest.mark.parametrize(
    ("basis", "funding_rate", "last", "binding", "price"),
    [
        # index + basis 100,050 between funding 100,000 and last 100,100
        ("50", "0", "100100", BASIS, Decimal(100050)),
        # funding price 100,010 (rate 0.01% over a whole interval) between 100,000 and 100,100
        ("0", "0.0001", "100100", FUNDING, Decimal(100010)),
        # last 100,020 between index + basis 100,000 and funding 100,030
        ("0", "0.0003", "100020", LAST, Decimal(100020)),
        # a wild last print is outvoted: 91,000 < 100,000 = 100,000
        ("0", "0", "91000", BASIS, Decimal(100000)),
    ],
)
def test_the_mark_is_the_median_of_three_each_can_bind(basis, funding_rate, last, binding, price):
    result = mark(basis=basis, funding_rate=funding_rate, last=last)
    assert (result.binding, result.price) == (binding, price)


def test_without_a_last_traded_price_the_mark_is_index_plus_basis():
    result = mark(basis="25", funding_rate="0.0003", last=None)
    assert (result.binding, result.price) == (BASIS, Decimal(100025))


@given(prices, prices, prices)
def test_the_mark_is_always_the_middle_of_its_three_terms(a, b, c):
    result = mark_price(
        index=a,
        basis=b - a,
        funding_rate=Decimal(0),
        seconds_until_funding=Decimal(1),
        last_price=c,
    )
    assert result.price == sorted([a, b, c])[1]

"""Funding and settlement formulas against Binance's published rules, and the vectorized face
against the Decimal reference.

Sources (the `search` tool's pages corpus holds the quoted texts):
- Binance, "Introduction to Binance Futures Funding Rates"
  (https://www.binance.com/en/support/faq/360033525031): F = P + clamp(I − P, 0.05%, −0.05%);
  "if (I – P) is within +/-0.05% then F = P + (I – P) = I. In other words, the Funding Rate
  will equal the Interest Rate"; the interest rate is "0.03% daily (0.01% per funding
  interval)"; the premium index is averaged with time weights over the interval.
- Binance, capped funding rate: "Capped Funding Rate = clamp(Funding Rate, −cap, +cap)"
  (per-contract cap and floor published on the contract's page).
- Binance, funding fee: "Funding Amount = Nominal Value of Positions × Funding Rate", nominal
  value = mark price × size; a positive rate makes longs pay shorts.
- Binance, funding interval N hours: "Funding Rate (F) = [P + clamp(I − P, 0.05%, −0.05%)] /
  (8/N)" (announcement of 18 Sept 2025).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.engine.funding import (
    average_premium,
    average_premium_vector,
    funding_payment,
    funding_payment_vector,
    funding_rate,
    funding_rate_vector,
    interval_interest,
    next_funding_time,
    premium_index,
    settlement_price,
)

D = Decimal
I_8H = D("0.0001")  # 0.01% per 8 h
CAP = D("0.0075")


@pytest.mark.parametrize(
    ("premium", "expected"),
    [
        # |I − P| ≤ 0.05%: "the Funding Rate will equal the Interest Rate"
        (D("0.0003"), D("0.0001")),
        (D("-0.0004"), D("0.0001")),
        (D("0.0001"), D("0.0001")),
        # beyond the dampener the premium shows through, shifted by 0.05%
        (D("0.0010"), D("0.0005")),  # 0.10% + clamp(−0.09%) = 0.10% − 0.05%
        (D("-0.0007"), D("-0.0002")),  # −0.07% + clamp(+0.08%) = −0.07% + 0.05%
    ],
)
def test_funding_rate_follows_binance_published_formula(premium, expected):
    assert funding_rate(average_premium=premium, interest=I_8H, cap=CAP) == expected


def test_funding_rate_is_capped_per_instrument():
    assert funding_rate(average_premium=D("0.02"), interest=I_8H, cap=CAP) == CAP
    assert funding_rate(average_premium=D("-0.02"), interest=I_8H, cap=CAP) == -CAP


def test_interest_scales_with_the_interval():
    # Binance: 0.03% a day = 0.01% per 8 h; a 4-hourly contract gets half of it per interval.
    assert interval_interest(interest_per_8h=I_8H, interval_s=8 * 3600) == D("0.0001")
    assert interval_interest(interest_per_8h=I_8H, interval_s=4 * 3600) == D("0.00005")


def test_average_premium_weighs_the_newest_sample_most():
    # (1·P1 + 2·P2 + 3·P3) / (1 + 2 + 3)
    averaged = average_premium([D("0.0001"), D("0.0002"), D("0.0006")])
    assert averaged.quantize(D("1e-24")) == D("0.000383333333333333333333")
    assert average_premium([]) == 0
    assert premium_index(mark_price=D("100.05"), index_price=D(100)) == D("0.0005")


def test_funding_fee_is_nominal_value_times_rate_longs_pay():
    # A 20,000 USD long at 0.01% pays 2 USD an interval (6 USD a day at three a day).
    paid = funding_payment(quantity=D("0.2"), mark_price=D(100000), rate=D("0.0001"))
    assert paid == D(-2)
    assert funding_payment(quantity=D("-0.2"), mark_price=D(100000), rate=D("0.0001")) == D(2)
    # a negative rate: shorts pay longs
    assert funding_payment(quantity=D("-1"), mark_price=D(50), rate=D("-0.001")) == D("-0.05")


money = st.decimals(min_value=D("0.001"), max_value=D(1000), places=3)
rates = st.decimals(min_value=D("-0.01"), max_value=D("0.01"), places=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(money, money, rates), min_size=1, max_size=40))
def test_vector_funding_matches_reference(rows):
    quantity = np.array([float(q) for q, _, _ in rows])
    mark = np.array([float(m) for _, m, _ in rows])
    premium = np.array([float(r) for _, _, r in rows])
    rate = funding_rate_vector(premium, np.full(len(rows), float(I_8H)), np.full(len(rows), 0.0075))
    for i, (q, m, p) in enumerate(rows):
        expected = funding_rate(average_premium=p, interest=I_8H, cap=CAP)
        assert rate[i] == pytest.approx(float(expected), abs=1e-12)
        paid = funding_payment(quantity=q, mark_price=m, rate=expected)
        vector_paid = funding_payment_vector(quantity[i : i + 1], mark[i : i + 1], rate[i : i + 1])
        # the reference settles to 8 decimals (a tie away from zero): within one step of it
        assert vector_paid[0] == pytest.approx(float(paid), rel=1e-9, abs=1e-8)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(rates, min_size=1, max_size=12), min_size=1, max_size=8))
def test_vector_average_premium_matches_reference(rows):
    width = max(len(r) for r in rows)
    padded = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        padded[i, width - len(row) :] = [float(p) for p in row]
    vector = average_premium_vector(padded)
    for i, row in enumerate(rows):
        assert vector[i] == pytest.approx(float(average_premium(row)), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(money, st.sampled_from([1, -1])), min_size=1, max_size=60),
    money,
    rates,
)
def test_funding_is_zero_sum_over_a_book_whose_longs_match_its_shorts(sizes, mark, rate):
    # every long has its short (the venue's open interest is two-sided): what longs pay,
    # shorts receive, to the last of the ledger's 18 decimals
    book = [sign * q for q, sign in sizes] + [-sign * q for q, sign in sizes]
    payments = [funding_payment(quantity=q, mark_price=mark, rate=rate) for q in book]
    assert sum(payments) == 0
    longs = sum(p for q, p in zip(book, payments, strict=True) if q > 0)
    assert (longs <= 0) if rate > 0 else (longs >= 0)


def test_settlement_price_is_the_time_weighted_index_of_the_last_30_minutes():
    expiry = datetime(2026, 12, 25, 8, tzinfo=UTC)
    minutes = timedelta(minutes=1)
    samples = [
        (expiry - 40 * minutes, D(90000)),  # before the window: holds from its start
        (expiry - 20 * minutes, D(96000)),  # held 20 minutes
        (expiry - 5 * minutes, D(99000)),  # held the last 5
        (expiry + minutes, D(1)),  # after delivery: ignored
    ]
    # (10 × 90000 + 15 × 96000 + 5 × 99000) / 30
    assert settlement_price(samples, until=expiry) == D(94500)
    with pytest.raises(ValueError):
        settlement_price([], until=expiry)


def test_next_funding_time_is_on_the_8_hour_grid():
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    at = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert next_funding_time(at, interval_s=8 * 3600, anchor=anchor) == at.replace(
        hour=16, minute=0
    )
    exactly = at.replace(hour=16, minute=0)
    assert next_funding_time(exactly, interval_s=8 * 3600, anchor=anchor) == exactly.replace(
        hour=0
    ) + timedelta(days=1)


def test_the_published_worked_example_of_binances_formula():
    """The worked example published for Binance's funding formula, number for number.

    Binance's FAQ "Introduction to Binance Futures Funding Rates"
    (https://www.binance.com/en/support/faq/introduction-to-binance-futures-funding-rates-360033525031)
    publishes F = P + clamp(I − P, 0.05%, −0.05%) with I = 0.01% per 8-hour interval and
    "Funding Amount = Nominal Value of Positions × Funding Rate (Nominal Value of Positions =
    Mark Price × Size of a Contract)", but no worked rate example (its one number is the impact
    margin notional, 200 USDT / 0.8% = 25,000 USDT). The example below is Hyperliquid's, which
    publishes the same formula with the same interest and dampener and works it through
    (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/funding, "Numerical Example"):
    interest 0.01%; impact bid 10,100 against a spot (index) price of 10,000; premium =
    (10,100 − 10,000) / 10,000 = 1%; clamp(0.01% − 1%, −0.05%, 0.05%) = −0.05%; funding rate =
    1% + (−0.05%) = 0.95%; a long of 10 BTC.
    Our premium samples the mark where Binance samples the impact price (we have no book).
    """
    # the premium of one sample, and of a whole interval of equal samples (Binance averages
    # 5,760 samples with time weights; equal samples average to themselves)
    premium = premium_index(mark_price=D("10100"), index_price=D("10000"))
    assert premium == D("0.01")
    assert average_premium([premium] * 5760) == D("0.01")
    interest = interval_interest(interest_per_8h=D("0.0001"), interval_s=8 * 3600)
    assert interest == D("0.0001")
    # the dampener: clamp(0.01% − 1%) = −0.05%; the rate 0.95% (a cap of 4% does not bind)
    rate = funding_rate(average_premium=premium, interest=interest, cap=D("0.04"))
    assert rate == D("0.0095")
    # and the long of 10 BTC pays its nominal value at the mark times the rate (Binance)
    assert funding_payment(quantity=D("10"), mark_price=D("10100"), rate=rate) == D("-959.5")
    assert funding_payment(quantity=D("-10"), mark_price=D("10100"), rate=rate) == D("959.5")
    # the vectorized face gives the same figures
    vector_rate = funding_rate_vector(np.array([0.01]), np.array([0.0001]), np.array([0.04]))
    assert vector_rate[0] == pytest.approx(0.0095, abs=1e-15)
    payment = funding_payment_vector(np.array([10.0]), np.array([10100.0]), vector_rate)
    assert payment[0] == pytest.approx(-959.5, abs=1e-9)

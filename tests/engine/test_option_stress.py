"""The desk's stress runs and cascades revalue options in full with Black-76 at the shocked
forward and vol (`margin.engine.option_stress`), not by their delta.

The hand book: one account holds 1 000 USDT, is short 1 BTC put K = 90 000 and long 1 BTC call
K = 110 000, both 30 days out (T = 30/365, σ√T = 0.6 × 0.286691 = 0.172015), forward
F = 100 000, implied vol 60 %. Premiums were paid in cash, so the options count at their whole
value (entry 0). A second account holds 1 BTC, so that BTC is an asset the scenario moves.

Now, Black-76 (rate 0), d1 = (ln(F/K) + σ²T/2) / (σ√T), d2 = d1 − σ√T:
- put: d1 = (0.105361 + 0.014795) / 0.172015 = 0.698524, d2 = 0.526509,
  P = K·N(−d2) − F·N(−d1) = 2 691.568493, delta N(d1) − 1 = −0.242427;
- call: d1 = (−0.095310 + 0.014795) / 0.172015 = −0.468071, d2 = −0.640086,
  C = F·N(d1) − K·N(d2) = 3 270.260505, delta N(d1) = 0.319866.
Margin balance 1 000 − 2 691.568493 + 3 270.260505 = 1 578.692012.

The crash: BTC −30 %, so F' = 70 000, and BTC falls, so the vol shock is the grid's +0.40,
scaled by (30 / 30)^0.13 = 1: σ' = 0.6 × 1.4 = 0.84 (σ'√T = 0.240821).
- put: d1 = (ln(70/90) + 0.028998) / 0.240821 = −0.923164, P' = 21 457.898204;
- call: d1 = (ln(70/110) + 0.028998) / 0.240821 = −1.756452, C' = 246.636814.
The book's loss is (P' − P) − (C' − C) = 18 766.329710 + 3 023.623691 = 21 789.953401, and
the balance left is 1 000 − 21 457.898204 + 246.636814 = −20 211.261390: a deficit.
By delta the loss would be −(0.242427 + 0.319866) × 100 000 × (−0.30) = 16 868.786, some
4 921 short: the short put's gamma and the vol rise are what the delta misses.
"""

from decimal import Decimal

import numpy as np
import pytest

from margin.engine.book_stress import stress_book, stressed_revaluation
from margin.engine.cascade import simulate_cascade
from margin.engine.option_stress import HeldOptions, scenario_vol_shocks
from margin.engine.options_vector import option_book_from_accounts
from margin.engine.review import account_scenarios
from margin.engine.types import AccountInput, CollateralLine, OptionInput
from margin.engine.vector import book_from_accounts

BALANCE_NOW = 1_578.692012
STRESSED_BALANCE = -20_211.261390
FULL_LOSS = 21_789.953401
DELTA_LOSS = 16_868.786


def _option(option_type: str, strike: str, side: int) -> OptionInput:
    return OptionInput(
        id=f"BTC-30D-{strike}-{option_type[0].upper()}",
        underlying="BTC",
        option_type=option_type,
        strike=Decimal(strike),
        expiry_days=Decimal(30),
        implied_vol=Decimal("0.6"),
        underlying_price=Decimal(100_000),
        side=side,
        quantity=Decimal(1),
        entry_price=Decimal(0),
    )


def _hand_book():
    accounts = [
        AccountInput(
            collateral=(CollateralLine(asset="USDT", quantity=Decimal(1000), price=Decimal(1)),),
            options=(_option("put", "90000", -1), _option("call", "110000", 1)),
        ),
        AccountInput(
            collateral=(CollateralLine(asset="BTC", quantity=Decimal(1), price=Decimal(100_000)),)
        ),
    ]
    book, marks, prices = book_from_accounts(accounts)
    held = HeldOptions(*option_book_from_accounts(accounts, book))
    crash = np.where(np.array(book.asset_names) == "BTC", -0.30, 0.0)
    return book, marks, prices, held, crash


def test_a_crash_raises_vol_a_small_rally_lowers_it():
    assert scenario_vol_shocks(np.array([-0.3, 0.0, 0.05, 0.16, 1.0])).tolist() == [
        0.40,
        0.0,
        -0.22,
        0.40,
        0.40,
    ]


def test_the_stress_loss_of_options_is_their_full_revaluation_not_their_delta():
    # given
    book, marks, prices, held, crash = _hand_book()
    # when
    now = stressed_revaluation(book, marks, prices, np.zeros(book.n_assets), held=held)
    stressed = stressed_revaluation(book, marks, prices, crash, held=held)
    # then
    assert now.margin_balance[0] == pytest.approx(BALANCE_NOW, abs=1e-5)
    assert stressed.margin_balance[0] == pytest.approx(STRESSED_BALANCE, abs=1e-5)
    loss = now.margin_balance[0] - stressed.margin_balance[0]
    assert loss == pytest.approx(FULL_LOSS, abs=1e-5)
    assert loss - DELTA_LOSS > 4_900


def test_the_desk_stress_run_counts_the_short_puts_deficit():
    # given
    book, marks, prices, held, crash = _hand_book()
    # when
    with_options = stress_book(book, marks, prices, crash, insurance_fund=0.0, held=held)
    linear_only = stress_book(book, marks, prices, crash, insurance_fund=0.0)
    # then
    assert with_options.deficit == pytest.approx(-STRESSED_BALANCE, abs=1e-5)
    assert with_options.accounts_under_maintenance == 1
    assert with_options.worst_accounts == (0,)
    assert linear_only.deficit == 0.0


def test_a_cascade_liquidates_the_option_holder_and_draws_its_deficit():
    # given
    book, marks, prices, held, crash = _hand_book()
    # when
    result = simulate_cascade(
        book,
        marks,
        prices,
        crash,
        depth=np.zeros(book.n_assets),
        max_rounds=5,
        insurance_fund=50_000.0,
        held=held,
    )
    # then
    first = result.rounds[0]
    assert first.liquidated_accounts == (0,)
    assert first.positions_closed == 2
    assert first.deficit == pytest.approx(-STRESSED_BALANCE, abs=1e-5)
    assert result.rounds[-1].accounts_liquidated == 0
    assert result.accounts_liquidated == 1


def test_a_cascade_unwinds_the_options_delta_through_the_underlying():
    # given: depth 1 000 000 USD per 1 % of BTC; the pool's options at the crash stand for
    # −(−0.822039) × 70 000 + 0.039506 × 70 000 = 60 308.15 USD of BTC, sold when closed.
    book, marks, prices, held, crash = _hand_book()
    depth = np.where(np.array(book.asset_names) == "BTC", 1_000_000.0, 0.0)
    # when
    result = simulate_cascade(
        book, marks, prices, crash, depth=depth, max_rounds=5, insurance_fund=0.0, held=held
    )
    # then: BTC falls a further 0.01 × 60 308.15 / 1 000 000 = 0.060308 %
    btc = book.asset_names.index("BTC")
    first = result.rounds[0]
    assert first.asset_prices[btc] / first.prices_before[btc] - 1 == pytest.approx(
        -0.00060308, abs=1e-8
    )


def test_the_account_reviews_scenarios_revalue_its_options_in_full():
    # given: the hand account alone, BTC an underlying only its options are on
    account = AccountInput(
        collateral=(CollateralLine(asset="USDT", quantity=Decimal(1000), price=Decimal(1)),),
        options=(_option("put", "90000", -1), _option("call", "110000", 1)),
    )
    # when
    rows = {row.label: row for row in account_scenarios(account, moving={"BTC"})}
    # then
    crash = rows["Every coin -30%"]
    assert crash.pnl == pytest.approx(-FULL_LOSS, abs=1e-5)
    assert crash.deficit == pytest.approx(-STRESSED_BALANCE, abs=1e-5)
    assert crash.under_maintenance
    assert "USDT de-pegs −10%" in rows

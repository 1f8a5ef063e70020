"""Settlement-coin PnL in its own coin (issue 15 item 5): a USDT-margined pool is measured in
USDT, so its USDT counts 1:1 whatever USDT's index does (Binance's USDⓈ-M wallet balance is in
USDT), other collateral is converted at its price over USDT's, and marks, PnL and MM are in
USDT already.

Before: USDT was valued at its USD index as collateral while PnL was booked 1:1 in USDT, so a
USDT wobble to 0.998 moved an all-USDT account's ratio, and a USDT de-peg stress took a long's
collateral down while its position, quoted in USDT, did not move: the wrong sign for longs.
"""

import math
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from margin.engine.reference import quote_account
from margin.engine.shocks import depeg, shocked_prices
from margin.engine.stress import StressModel, account_stress, stress_margin
from margin.engine.types import AccountInput, CollateralLine
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import assert_vector_matches_reference
from tests.engine.support import btc_perp, close


def _usdt(quantity: str, index: str) -> CollateralLine:
    return CollateralLine(asset="USDT", quantity=Decimal(quantity), price=Decimal(index))


def _all_usdt(index: str, *, settles: bool = True) -> AccountInput:
    """10,000 USDT and a 1 BTC long at 95,000 (MM 95,000 × 0.005 − 50 = 425 USDT)."""
    return AccountInput(
        collateral=(_usdt("10000", index),),
        positions=(btc_perp(quantity="1", entry="95000", mark="95000"),),
        settlement_asset="USDT" if settles else None,
        settlement_price=Decimal(index) if settles else Decimal(1),
    )


def test_a_usdt_wobble_does_not_move_an_all_usdt_account():
    # before: valued at its index, 10,000 USDT at 0.998 counted 9,980 against 425 of MM
    before = quote_account(_all_usdt("0.998", settles=False)).margin_ratio
    assert round(before, 6) == Decimal("0.042585")
    # after: the pool counts in USDT, the ratio is the one at a perfect peg
    at_peg = quote_account(_all_usdt("1")).margin_ratio
    wobbled = quote_account(_all_usdt("0.998"))
    assert at_peg == wobbled.margin_ratio == Decimal("0.0425")
    assert wobbled.margin_balance == Decimal(10000)
    assert_vector_matches_reference([_all_usdt("0.998")])


def test_other_collateral_is_converted_into_the_settlement_coin():
    # 1 BTC at 95,000 USD is 95,000 / 0.95 = 100,000 USDT when USDT trades at 0.95.
    account = AccountInput(
        collateral=(_usdt("1000", "0.95"), CollateralLine("BTC", Decimal(1), Decimal(95000))),
        settlement_asset="USDT",
        settlement_price=Decimal("0.95"),
    )
    assert quote_account(account).collateral_value == Decimal(101000)
    assert_vector_matches_reference([account])


@pytest.mark.parametrize(("side", "sign"), [(1, 1), (-1, -1)])
def test_a_usdt_depeg_stress_moves_longs_and_shorts_the_right_way(side, sign):
    # given: 10,000 USDT and 1 BTC at 95,000, long or short, USDT at its peg
    account = replace(
        _all_usdt("1"), positions=(btc_perp(side=side, quantity="1", entry="95000", mark="95000"),)
    )
    book, marks, prices = book_from_accounts([account])
    usdt = book.asset_names.index("USDT")
    # when: USDT loses 10 % against USD, BTC holds its USD price
    moved_marks, moved_prices = shocked_prices(
        book, marks, prices, depeg(book.n_assets, usdt, -0.1)
    )
    after = revalue(book, moved_marks, moved_prices)
    # then: BTCUSDT now costs 95,000 / 0.9 USDT: the long gains 10,555.56 USDT, the short loses
    # it; the USDT wallet still counts 10,000 USDT
    assert moved_marks[0] == pytest.approx(95000 / 0.9)
    gain = 95000 / 0.9 - 95000
    assert after.margin_balance[0] == pytest.approx(10000 + sign * gain)
    assert after.collateral_value[0] == pytest.approx(10000)


def test_before_the_fix_the_depeg_took_the_long_down():
    # The same long measured in USD with marks held (the old valuation): −10 % on the wallet.
    account = _all_usdt("1", settles=False)
    book, marks, prices = book_from_accounts([account])
    moves = np.zeros(book.n_assets)
    moves[book.asset_names.index("USDT")] = -0.1
    after = revalue(book, marks, prices * (1 + moves))
    assert after.margin_balance[0] == pytest.approx(9000)


def test_engines_agree_with_a_settlement_price():
    accounts = [
        _all_usdt("0.998"),
        AccountInput(
            collateral=(
                _usdt("-20000", "0.998"),
                CollateralLine("BTC", Decimal("0.5"), Decimal(95000)),
            ),
            positions=(btc_perp(quantity="0.3", entry="90000", mark="95000"),),
            settlement_asset="USDT",
            settlement_price=Decimal("0.998"),
        ),
    ]
    assert_vector_matches_reference(accounts)
    assert close(
        revalue(*book_from_accounts(accounts)).margin_balance[0],
        quote_account(accounts[0]).margin_balance,
    )


def _settled(*, side: int, collateral: tuple[CollateralLine, ...]) -> AccountInput:
    return AccountInput(
        collateral=collateral,
        positions=(btc_perp(side=side),),
        settlement_asset="USDT",
        settlement_price=Decimal(1),
    )


@pytest.mark.parametrize(("side", "loss"), [(1, Decimal(-15000)), (-1, Decimal(15000))])
def test_a_usdt_de_peg_scenario_moves_a_long_and_a_short_the_right_way(side, loss):
    """10,000 USDT behind 1 BTC (BTCUSDT at 60,000) in a USDT pool; USDT loses 20 % in USD and
    BTC holds in USD. In USDT, BTC is then 60,000 / 0.8 = 75,000: the long gains 15,000 (a
    loss of −15,000), the short loses 15,000; the pool's USDT counts 1:1 and does not move.
    Before, the move was taken in USD: the USDT lost 10,000 × 20 % = 2,000 and BTC did not
    move, a loss of 2,000 for the long and the short alike."""
    account = _settled(side=side, collateral=(_usdt("10000", "1"),))
    model = StressModel.build(("USDT", "BTC"), np.array([0.05, 0.03]))
    stress = account_stress(account, model, shocks=({"USDT": Decimal("-0.2")},))
    assert stress.scenario_losses == (loss,)


def test_a_usdt_de_peg_scenario_raises_crypto_collateral_in_the_pool():
    """1 BTC of collateral (no haircut, 60,000 USD) in a USDT pool, USDT −20 %: 75,000 USDT,
    15,000 more."""
    account = AccountInput(
        collateral=(CollateralLine("BTC", Decimal(1), Decimal(60000)),),
        settlement_asset="USDT",
        settlement_price=Decimal(1),
    )
    model = StressModel.build(("USDT", "BTC"), np.array([0.05, 0.03]))
    stress = account_stress(account, model, shocks=({"USDT": Decimal("-0.2")},))
    assert stress.scenario_losses == (Decimal(-15000),)


def test_both_engines_charge_a_short_its_usdt_de_peg_loss():
    """A short of 1 BTC at 60,000 on 10,000 USDT in a USDT pool; σ per day 5 % for USDT, 0.1 %
    for BTC, uncorrelated, k = 3. The named move USDT −3σ is e^−0.15 − 1 = −13.93 % in USD, so
    BTC rises by e^0.15 − 1 = 16.18 % in USDT: the short loses 60,000 × 0.161834 = 9,710.05.
    The covariance loss, 3 × (0.001 × 60,000 + 0.05 × 10,000) = 1,680, binds below it. (Taken
    in USD, the worst named loss was the USDT's own, 10,000 × 13.93 % = 1,392.92, and the
    covariance loss bound at 1,680: a de-peg that hurts the short most went unseen.)"""
    account = _settled(side=-1, collateral=(_usdt("10000", "1"),))
    book, marks, prices = book_from_accounts([account])
    floors = {"USDT": 0.05, "BTC": 0.001}
    model = StressModel.build(book.asset_names, np.array([floors[a] for a in book.asset_names]))
    reference = account_stress(account, model)
    vector = stress_margin(book, marks, prices, model)
    expected = 60000 * math.expm1(0.15)
    assert float(reference.worst_loss) == pytest.approx(expected, rel=1e-12)
    assert round(expected, 2) == 9710.05
    assert close(vector.worst_loss[0], reference.worst_loss)
    assert float(reference.covariance_loss) == pytest.approx(1680)

"""Settlement-coin PnL in its own coin (issue 15 item 5): a USDT-margined pool is measured in
USDT, so its USDT counts 1:1 whatever USDT's index does (Binance's USDⓈ-M wallet balance is in
USDT), other collateral is converted at its price over USDT's, and marks, PnL and MM are in
USDT already.

Before: USDT was valued at its USD index as collateral while PnL was booked 1:1 in USDT, so a
USDT wobble to 0.998 moved an all-USDT account's ratio, and a USDT de-peg stress took a long's
collateral down while its position, quoted in USDT, did not move: the wrong sign for longs.
"""

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from margin.engine.reference import quote_account
from margin.engine.shocks import depeg, shocked_prices
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

"""The liquidity add-on and the per-owner tiers inside the engine's figures: both engines agree
with them in, and the add-on behaves as the square-root law says."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine.errors import EngineInputError
from margin.engine.explain import explain_account
from margin.engine.reference import collateral_line_value, quote_account
from margin.engine.types import AccountInput, CollateralLine, Liquidity
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import assert_vector_matches_reference
from tests.engine.strategies import books, decimals, linked_books
from tests.engine.support import btc_perp, close, usdt
from tests.engine.test_explain import assert_steps_add_up
from tests.engine.test_liquidity import BTC_TIERS

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

liquidities = st.one_of(
    st.none(),
    st.builds(
        Liquidity,
        depth=decimals("10000", "1000000000", 0),
        volatility=decimals("0", "0.3", 4),
        coefficient=decimals("0.5", "1.5", 2),
    ),
)


@st.composite
def with_liquidity(draw, market_and_accounts) -> list[AccountInput]:
    """The accounts with a market depth on some instruments and assets, and owners who hold
    more of a thing in other accounts than in this one."""
    _, accounts = draw(market_and_accounts)
    instrument_markets: dict[tuple, Liquidity | None] = {}
    asset_markets: dict[str, Liquidity | None] = {}
    more = st.one_of(st.none(), decimals("0", "5", 3))

    def owner(quantity: Decimal) -> Decimal | None:
        extra = draw(more)
        return None if extra is None else quantity * (1 + extra)

    changed = []
    for account in accounts:
        positions = []
        for position in account.positions:
            key = (position.brackets, position.mark_price, position.risk_asset)
            if key not in instrument_markets:
                instrument_markets[key] = draw(liquidities)
            positions.append(
                replace(
                    position,
                    liquidity=instrument_markets[key],
                    owner_quantity=owner(position.quantity),
                )
            )
        lines = []
        for line in account.collateral:
            if line.asset not in asset_markets:
                asset_markets[line.asset] = draw(liquidities)
            lines.append(
                replace(
                    line,
                    liquidity=asset_markets[line.asset],
                    owner_quantity=owner(line.quantity) if line.quantity > 0 else None,
                )
            )
        changed.append(replace(account, positions=tuple(positions), collateral=tuple(lines)))
    return changed


@BOUNDED
@given(with_liquidity(books()))
def test_vector_matches_reference_with_liquidity_and_owners(accounts):
    assert_vector_matches_reference(accounts)


@BOUNDED
@given(with_liquidity(linked_books()))
def test_linked_prices_match_with_liquidity_and_owners(accounts):
    assert_vector_matches_reference(accounts)


DEEP = Liquidity(depth=Decimal(100_000_000), volatility=Decimal("0.04"))


def test_add_on_by_hand_in_maintenance_and_initial_margin():
    # given 20 BTC at 50,000 (1M notional) in a market trading 100M over the horizon, σ 4 %
    plain = btc_perp(quantity="20", mark="50000", entry="50000")
    liquid = replace(plain, liquidity=DEEP)
    account = AccountInput(collateral=(usdt("200000"),), positions=(liquid,))
    # when  the account is quoted
    row = quote_account(account).positions[0]
    without = quote_account(replace(account, positions=(plain,))).positions[0]
    # then  the add-on is 1M × 0.04 × √(1M / 100M) = 4,000, in MM and in IM
    assert row.liquidity_addon == Decimal(4000)
    assert row.maintenance_margin == without.maintenance_margin + 4000
    assert row.initial_margin == without.initial_margin + 4000
    # and   the liquidation price comes nearer: equity meets the larger requirement sooner
    assert row.liquidation_price > without.liquidation_price
    assert_vector_matches_reference([account])


@given(
    quantity=decimals("0.001", "100", 3),
    extra=decimals("0.001", "100", 3),
    depth=decimals("1000000", "1000000000", 0),
    volatility=decimals("0.001", "0.3", 4),
)
def test_add_on_grows_with_size_faster_than_the_position(quantity, extra, depth, volatility):
    market = Liquidity(depth=depth, volatility=volatility)

    def addon(size: Decimal) -> Decimal:
        position = replace(btc_perp(quantity=str(size)), liquidity=market)
        return quote_account(AccountInput(positions=(position,))).positions[0].liquidity_addon

    small, large = addon(quantity), addon(quantity + extra)
    assert large > small
    assert large / (quantity + extra) >= small / quantity


def test_splitting_a_position_over_accounts_gains_nothing():
    # given one owner's 40 BTC, in one account or as four accounts of 10 that know the owner's 40
    whole = replace(btc_perp(quantity="40"), liquidity=DEEP)
    part = replace(btc_perp(quantity="10"), liquidity=DEEP, owner_quantity=Decimal(40))
    alone = replace(btc_perp(quantity="10"), liquidity=DEEP)
    one = quote_account(AccountInput(positions=(whole,))).positions[0].liquidity_addon
    four = [quote_account(AccountInput(positions=(part,))).positions[0].liquidity_addon] * 4
    naive = quote_account(AccountInput(positions=(alone,))).positions[0].liquidity_addon
    # then  the four shares add up to the whole's add-on; taken alone they would be half of it
    assert close(sum(four), one)
    assert close(4 * naive, one / 2)


def test_per_owner_haircut_tiers_in_both_engines():
    # given the 5M of BTC split over five accounts of one owner
    line = CollateralLine("BTC", Decimal(10), Decimal(100_000), BTC_TIERS, Decimal(50))
    accounts = [AccountInput(collateral=(line,)) for _ in range(5)]
    # then  each counts a fifth of 1M × 0.95 + 4M × 0.9, in the reference and the vector engine
    assert collateral_line_value(line, Decimal(1)) == Decimal(910_000)
    book, marks, prices = book_from_accounts(accounts)
    assert close(revalue(book, marks, prices).collateral_value.sum(), Decimal(4_550_000))
    assert_vector_matches_reference(accounts)


def test_collateral_far_above_depth_takes_an_extra_haircut():
    # given 1,000 BTC at 100,000 (100M) in a market trading 10M over the horizon, σ 4 %
    thin = Liquidity(depth=Decimal(10_000_000), volatility=Decimal("0.04"))
    line = CollateralLine("BTC", Decimal(1000), Decimal(100_000), (), liquidity=thin)
    small = replace(line, quantity=Decimal("0.1"))
    # then  selling it all costs 0.04 × √10 = 12.6 % of it; a tenth of a coin 0.04 × √0.001
    assert close(collateral_line_value(line, Decimal(1)), 1e8 * (1 - 0.04 * 10**0.5))
    assert close(collateral_line_value(small, Decimal(1)), 1e4 * (1 - 0.04 * 0.001**0.5))
    huge = replace(line, liquidity=Liquidity(depth=Decimal(1), volatility=Decimal("0.5")))
    assert collateral_line_value(huge, Decimal(1)) == 0
    assert_vector_matches_reference([AccountInput(collateral=(line, usdt("-5000000")))])


def test_owner_quantity_below_the_holding_is_refused():
    with pytest.raises(EngineInputError, match="owner_quantity"):
        replace(btc_perp(quantity="10"), owner_quantity=Decimal(5))
    with pytest.raises(EngineInputError, match="depth"):
        Liquidity(depth=Decimal(0), volatility=Decimal("0.1"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_liquidity(books(max_accounts=2)))
def test_explain_adds_up_with_the_liquidity_charges(accounts):
    for account in accounts:
        steps = explain_account(account, quote_account(account))
        assert_steps_add_up(steps)
        for position in account.positions:
            key = f"positions.{position.id}.liquidity_addon"
            assert (key in steps) == (position.liquidity is not None)


def test_explain_shows_the_add_on_by_hand():
    position = replace(btc_perp(quantity="20", mark="50000", entry="50000"), liquidity=DEEP)
    steps = explain_account(AccountInput(collateral=(usdt("200000"),), positions=(position,)))
    addon = steps[f"positions.{position.id}.liquidity_addon"]
    assert [step.result for step in addon] == [Decimal(1_000_000), Decimal("0.1"), Decimal(4000)]
    assert "{liquidity_addon}" in steps[f"positions.{position.id}.maintenance_margin"][0].formula

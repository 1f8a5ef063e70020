"""Brackets per owner: the bracket of what one owner holds of an instrument over all their
accounts (long and short alike), each position carrying its share of the owner's requirement,
so splitting a position over accounts gains nothing. Binance picks the bracket per symbol in
each futures account ("Leverage and Margin of USDⓈ-M Futures",
https://www.binance.com/en/support/faq/360033162192); the rule here is per owner."""

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine.explain import explain_account
from margin.engine.liquidation import account_after, apply_plan, liquidation_plan, lower_tier_plan
from margin.engine.reference import quote_account
from margin.engine.types import AccountInput, PositionInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.agreement import assert_vector_matches_reference
from tests.engine.strategies import books, decimals, linked_books
from tests.engine.support import btc_perp, close, usdt
from tests.engine.test_explain import assert_steps_add_up
from tests.engine.test_liquidation import assert_back_under_target
from tests.engine.test_portfolio_prices import assert_portfolio_prices_agree

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MARK = "100000"


def btc(quantity: str, owner_quantity: str | None = None, **kwargs) -> PositionInput:
    """A BTCUSDT long on Binance's table at a mark of 100,000, its owner holding
    `owner_quantity` over all their accounts."""
    position = btc_perp(quantity=quantity, entry=MARK, mark=MARK, **kwargs)
    if owner_quantity is None:
        return position
    return replace(position, owner_quantity=Decimal(owner_quantity))


def maintenance(position: PositionInput) -> Decimal:
    return quote_account(AccountInput(positions=(position,))).positions[0].maintenance_margin


def owners_of(accounts: list[AccountInput], owner_of_account: list[int]) -> list[AccountInput]:
    """The accounts with each position's `owner_quantity` what its owner holds of the
    instrument over all their accounts, long and short alike (as the database's
    `owner_position_quantities` sums it)."""

    def instrument(position: PositionInput) -> tuple:
        return (position.brackets, position.mark_price, position.risk_asset)

    held: dict[tuple, Decimal] = defaultdict(Decimal)
    for owner, account in zip(owner_of_account, accounts, strict=True):
        for position in account.positions:
            held[owner, instrument(position)] += position.quantity
    return [
        replace(
            account,
            positions=tuple(
                replace(p, owner_quantity=held[owner, instrument(p)]) for p in account.positions
            ),
        )
        for owner, account in zip(owner_of_account, accounts, strict=True)
    ]


@st.composite
def owned_books(draw, market_and_accounts) -> list[AccountInput]:
    """A book's accounts shared out among a few owners."""
    _, accounts = draw(market_and_accounts)
    owner_of_account = draw(
        st.lists(st.integers(0, 2), min_size=len(accounts), max_size=len(accounts))
    )
    return owners_of(accounts, owner_of_account)


def test_splitting_5m_over_five_accounts_gains_nothing():
    # given one owner's 50 BTC (5M USD at 100,000) in one account, or 10 in each of five
    whole = btc("50")
    fifth = btc("10", owner_quantity="50")
    # then  one account: bracket 4, 5M × 1 % − 11,450 = 38,550
    row = quote_account(AccountInput(positions=(whole,))).positions[0]
    assert (row.bracket, row.maintenance_margin) == (4, Decimal(38_550))
    # and   five accounts: each in the owner's bracket 4, a fifth of it, 38,550 in all
    split = quote_account(AccountInput(positions=(fifth,))).positions[0]
    assert (split.bracket, split.owner_notional, split.owner_share) == (
        4,
        Decimal(5_000_000),
        Decimal("0.2"),
    )
    assert split.maintenance_margin == Decimal(7_710)
    # and   per account (the venue's rule) the five would pay 5 × 5,550 = 27,750, bracket 3
    assert 5 * maintenance(btc("10")) == Decimal(27_750)
    # and   the vector engine says the same over the five accounts
    accounts = [AccountInput(positions=(fifth,), collateral=(usdt("100000"),))] * 5
    book, marks, prices = book_from_accounts(accounts)
    result = revalue(book, marks, prices)
    assert close(result.account_maintenance_margin.sum(), 38_550)
    assert list(result.bracket) == [4] * 5
    assert_vector_matches_reference(accounts)


def test_two_owners_with_1m_each_stay_in_bracket_3():
    # given two owners holding 10 BTC each, one account each
    accounts = owners_of([AccountInput(positions=(btc("10"),))] * 2, [0, 1])
    book, marks, prices = book_from_accounts(accounts)
    result = revalue(book, marks, prices)
    # then  each pays 1M × 0.65 % − 950 in bracket 3
    assert list(result.bracket) == [3, 3]
    assert close(result.account_maintenance_margin.sum(), 2 * 5_550)
    assert all(quote_account(a).maintenance_margin == Decimal(5_550) for a in accounts)


def test_a_hedge_across_accounts_counts_both_legs():
    # given an owner long 30 BTC in one account and short 20 in another (gross 5M, net 1M):
    # each account is liquidated on its own, so each leg must be closed on its own
    long_leg, short_leg = btc("30", "50"), btc("20", "50", side=-1)
    # then  both legs take the bracket of the owner's gross 5M, shares 0.6 and 0.4
    rows = [quote_account(AccountInput(positions=(p,))).positions[0] for p in (long_leg, short_leg)]
    assert [r.bracket for r in rows] == [4, 4]
    assert sum(r.maintenance_margin for r in rows) == Decimal(38_550)


@BOUNDED
@given(st.lists(decimals("0.001", "80", 3), min_size=1, max_size=6), decimals("1000", "200000", 2))
def test_the_shares_add_up_to_the_owners_requirement(parts, mark):
    # given one owner's position on Binance's table split over accounts in any way
    total = sum(parts)
    whole = replace(btc_perp(quantity=str(total)), mark_price=mark)
    pieces = [replace(whole, quantity=q, owner_quantity=total) for q in parts]
    # then  the pieces' MM add up to the whole's, in both engines
    assert close(sum(maintenance(p) for p in pieces), maintenance(whole))
    accounts = [AccountInput(positions=(p,)) for p in pieces]
    book, marks, prices = book_from_accounts(accounts)
    assert close(revalue(book, marks, prices).account_maintenance_margin.sum(), maintenance(whole))


@BOUNDED
@given(owned_books(books()))
def test_vector_matches_reference_with_owners_over_accounts(accounts):
    assert_vector_matches_reference(accounts)


@BOUNDED
@given(owned_books(linked_books()))
def test_linked_prices_match_with_owners_over_accounts(accounts):
    assert_vector_matches_reference(accounts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owned_books(linked_books(max_accounts=3)), st.integers(0, 2**32 - 1))
def test_portfolio_scheme_prices_match_with_owners_over_accounts(accounts, seed):
    # the portfolio scheme's floor is the tiered MM, taken in the owner's bracket
    assert_portfolio_prices_agree(accounts, seed)


def test_the_liquidation_price_moves_when_the_owners_other_account_grows():
    # given an account long 10 BTC at 100,000 on 100,000 USDT, its owner holding nothing else,
    # then 40 and 190 BTC more in other accounts
    def liquidation(owner_quantity: str | None) -> Decimal:
        account = AccountInput(positions=(btc("10", owner_quantity),), collateral=(usdt("100000"),))
        book, marks, prices = book_from_accounts([account])
        vector = revalue(book, marks, prices).liquidation_price[0]
        reference = quote_account(account).positions[0].liquidation_price
        assert close(vector, reference)
        return reference

    alone, among_50, among_200 = liquidation(None), liquidation("50"), liquidation("200")
    # then  the owner's larger bracket asks more of this account: liquidation comes sooner
    assert alone < among_50 < among_200
    # and   at that price the account's equity meets its share of the owner's MM there
    price = among_50
    owner = Decimal(50) * price
    assert owner >= Decimal(3_000_000)  # still the owner's bracket 4 at the price
    equity = Decimal(100_000) + 10 * (price - Decimal(MARK))
    assert close(equity, Decimal(10) * price * Decimal("0.01") - Decimal(11_450) / 5)


def test_explain_shows_the_owners_notional_bracket_and_share():
    account = AccountInput(positions=(btc("10", "50"),), collateral=(usdt("100000"),))
    steps = explain_account(account, quote_account(account))
    assert_steps_add_up(steps)
    bracket = {step.figure: step for step in steps["positions.BTCUSDT.bracket"]}
    assert bracket["owner notional"].result == Decimal(5_000_000)
    assert bracket["owner share"].result == Decimal("0.2")
    assert bracket["bracket"].result == 4
    assert "{owner_notional}" in bracket["bracket"].formula
    (mm,) = steps["positions.BTCUSDT.maintenance_margin"]
    assert "{owner_share}" in mm.formula and mm.result == Decimal(7_710)
    # and   a position its owner holds nowhere else is explained as before
    alone = AccountInput(positions=(btc("10"),), collateral=(usdt("100000"),))
    alone_steps = explain_account(alone, quote_account(alone))
    assert [s.figure for s in alone_steps["positions.BTCUSDT.bracket"]] == ["bracket", "cum"]


def test_a_liquidation_cuts_just_enough_of_a_share_of_the_owners_position():
    # given 20 BTC at 60,000 in an account whose owner holds 60 more elsewhere (4.8M, bracket
    # 4), past its line on 9,000 USDT
    account = AccountInput(
        collateral=(usdt("9000"),),
        positions=(replace(btc_perp("BTC", quantity="20"), owner_quantity=Decimal(80)),),
    )
    assert quote_account(account).margin_ratio > 1
    slippage, lot = Decimal("0.001"), Decimal("1e-8")
    plan = liquidation_plan(account, target_ratio=Decimal("0.5"), slippage=slippage)
    (step,) = plan.steps
    after = apply_plan(account, plan)
    # then  the owner's holding shrinks with the cut, and the cut is the least that works
    (left,) = after.positions
    assert left.owner_quantity == 80 - step.quantity
    assert quote_account(after).margin_ratio <= Decimal("0.5")
    short_of_it = account_after(account, {"BTC": step.quantity - lot}, slippage=slippage)
    assert quote_account(short_of_it).margin_ratio > Decimal("0.5")


def test_the_lower_tier_step_cuts_to_the_floor_of_the_owners_notional():
    # given 50 BTC at 60,000 in an account whose owner holds 30 more elsewhere: the owner's 4.8M
    # is in bracket 4, this account's 3M alone would be too
    account = AccountInput(
        collateral=(usdt("22000"),),
        positions=(replace(btc_perp("BTC", quantity="50"), owner_quantity=Decimal(80)),),
    )
    assert quote_account(account).margin_ratio > 1
    plan = lower_tier_plan(account, threshold=Decimal("0.95"), slippage=Decimal("0.007"))
    # then  it keeps what takes the owner just under 3M: 20 BTC less a lot, not 50 less a lot
    (step,) = plan.steps
    assert step.remaining_quantity == Decimal("19.99999999")
    (row,) = quote_account(apply_plan(account, plan)).positions
    assert row.bracket == 3 and row.owner_notional < 3_000_000
    assert plan.reaches_target


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    owned_books(books(max_accounts=3)),
    st.sampled_from([Decimal("0.3"), Decimal("0.8"), Decimal(1)]),
    decimals("0", "0.02", 4),
)
def test_accounts_of_owners_end_under_target_or_closed(accounts, target, slippage):
    for account in accounts:
        assert_back_under_target(account, target, slippage)

"""The live book (the revaluation tick) takes haircut tiers on what one owner holds over all
their accounts, and the liquidity charges on each market's published depth; a trader's own
figures (the account state every page and write quotes) say the same."""

from decimal import Decimal

import pytest

from margin.engine.liquidity import position_liquidity_addon
from margin.models import MarginSnapshot, MarkPrice
from margin.selectors.accounts import account_state_load
from margin.selectors.liquidity import liquidity_terms
from margin.selectors.parameters import parameters_in_force
from margin.services.revaluation import revaluation_tick_run
from tests.factories import UserFactory
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def snapshot(account, run) -> MarginSnapshot:
    return MarginSnapshot.objects.get(account=account, tick=run.start.tick)


def test_five_million_of_btc_split_over_five_accounts_counts_as_one_holding(reference, now):
    # given BTC at 100,000; one owner holds 10 BTC in each of five accounts, another 50 in one
    market_prices(at=now, BTC=100000, USDT=1)
    owner = UserFactory()
    split = [funded_account(usdt="0", BTC="10", user=owner, name=f"Book {n}") for n in range(5)]
    whole = funded_account(usdt="0", BTC="50")
    alone = funded_account(usdt="0", BTC="10")
    # when  the book is revalued
    run = revaluation_tick_run(now=now)
    # then  the whole holding counts 1M × 0.95 + 4M × 0.9 = 4.55M and each split account a
    #       fifth of it (per account the tiers gave 950,000 each, 4.75M in all)
    assert snapshot(whole, run).collateral_value == Decimal(4_550_000)
    for account in split:
        assert snapshot(account, run).collateral_value == Decimal(910_000)
    # and   an owner with one account is untouched
    assert snapshot(alone, run).collateral_value == Decimal(950_000)
    # and   the account state (pages, writes) counts the same share
    assert account_state_load(split[0]).quote().collateral_value == Decimal(910_000)


def test_the_add_on_of_a_published_depth_is_in_the_tick_and_the_account_state(reference, now):
    # given a 40 BTC long at 100,000 (4M) and BTCUSDT trading 200M a day
    market_prices(at=now, BTC=100000, USDT=1)
    account = funded_account(usdt="1000000", fills=[("BTCUSDT", "buy", "40")])
    before = snapshot(account, revaluation_tick_run(now=now)).maintenance_margin
    MarkPrice.objects.filter(instrument__symbol="BTCUSDT").update(depth_usd=Decimal(200_000_000))
    # when  the book is revalued again
    after = snapshot(account, revaluation_tick_run(now=now)).maintenance_margin
    # then  MM grows by the square-root add-on on the published depth and σ (the BTC floor)
    market = liquidity_terms(parameters_in_force()).instruments["BTCUSDT"]
    notional = Decimal(4_000_000)
    expected = position_liquidity_addon(notional, notional, market)
    assert expected > 0
    assert float(after - before) == pytest.approx(float(expected), rel=1e-9)
    # and   the account state quotes the same add-on, in its MM and IM
    row = account_state_load(account).quote().positions[0]
    assert float(row.liquidity_addon) == pytest.approx(float(expected), rel=1e-12)


def test_an_owners_add_on_is_taken_on_all_they_hold_of_the_instrument(reference, now):
    # given one owner with 20 BTC long in each of two accounts, and a published depth
    market_prices(at=now, BTC=100000, USDT=1)
    MarkPrice.objects.filter(instrument__symbol="BTCUSDT").update(depth_usd=Decimal(200_000_000))
    owner = UserFactory()
    accounts = [
        funded_account(
            usdt="1000000", fills=[("BTCUSDT", "buy", "20")], user=owner, name=f"Book {n}"
        )
        for n in range(2)
    ]
    # when  the book is revalued
    run = revaluation_tick_run(now=now)
    # then  each account's add-on is half the add-on of the owner's 40 BTC (4M), not the
    #       add-on of its own 20 (which is 1/√2 of that half)
    market = liquidity_terms(parameters_in_force()).instruments["BTCUSDT"]
    whole = position_liquidity_addon(Decimal(4_000_000), Decimal(4_000_000), market)
    for account in accounts:
        row = account_state_load(account).quote().positions[0]
        assert float(row.liquidity_addon) == pytest.approx(float(whole / 2), rel=1e-12)
    mm = [snapshot(account, run).maintenance_margin for account in accounts]
    assert mm[0] == mm[1]

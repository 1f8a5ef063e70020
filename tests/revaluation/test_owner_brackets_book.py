"""Brackets per owner in the live book: the revaluation tick, the account state every page and
write quotes, the order preview and the leverage cap take the bracket of what one owner holds
of an instrument over all their accounts (`margin.engine.reference.maintenance_margin`)."""

from decimal import Decimal

import pytest

from margin.models import MarginSnapshot
from margin.selectors.accounts import account_state_load
from margin.services.margin_mode import position_leverage_set
from margin.services.positions import position_market_fill
from margin.services.revaluation import revaluation_tick_run
from tests.factories import UserFactory
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def maintenance(account, run) -> Decimal:
    return MarginSnapshot.objects.get(account=account, tick=run.start.tick).maintenance_margin


def btc_long(quantity: str, *, user=None, name: str = "Main", usdt: str = "200000"):
    return funded_account(usdt=usdt, fills=[("BTCUSDT", "buy", quantity)], user=user, name=name)


def test_the_tick_takes_the_bracket_of_the_owners_notional(reference, now):
    # given BTCUSDT at 100,000 on Binance's table; one owner holds 10 BTC in each of five
    # accounts, another 50 in one, two more 10 each in one account apiece
    market_prices(at=now, BTC=100000, USDT=1)
    owner = UserFactory()
    split = [btc_long("10", user=owner, name=f"Book {n}") for n in range(5)]
    whole = btc_long("50", usdt="1000000")
    lone = [btc_long("10") for _ in range(2)]
    # when  the book is revalued
    run = revaluation_tick_run(now=now)
    # then  the whole 5M pays 5M × 1 % − 11,450 = 38,550 (bracket 4), and so do the five
    #       accounts together, a fifth each (per account they would pay 5,550 each)
    assert maintenance(whole, run) == Decimal(38_550)
    assert [maintenance(account, run) for account in split] == [Decimal(7_710)] * 5
    # and   owners of 1M each stay in bracket 3
    assert [maintenance(account, run) for account in lone] == [Decimal(5_550)] * 2
    # and   the account state (pages, writes, the desk) quotes the owner's bracket and share
    (row,) = account_state_load(split[0]).quote().positions
    assert (row.bracket, row.owner_notional, row.owner_share) == (
        4,
        Decimal(5_000_000),
        Decimal("0.2"),
    )
    assert row.maintenance_margin == Decimal(7_710)


def test_the_order_preview_and_the_leverage_cap_follow_the_owners_bracket(reference, now):
    # given one owner with 10 BTC long in each of five accounts, another with 10 in one
    market_prices(at=now, BTC=100000, USDT=1)
    owner = UserFactory()
    split = [btc_long("10", user=owner, name=f"Book {n}") for n in range(5)]
    lone = btc_long("10")
    # when  one of the five previews buying 1 BTC more
    preview = position_market_fill.preview(
        account=split[0], instrument="BTCUSDT", side="buy", quantity="1"
    )
    # then  the new position is 11 of the owner's 51: 1.1M × 1 % − 11,450 × 11 / 51
    (row,) = preview.after.positions
    assert row.bracket == 4 and row.owner_notional == Decimal(5_100_000)
    expected = Decimal(11_000) - Decimal(11_450) * 11 / 51
    assert abs(row.maintenance_margin - expected) < Decimal("1e-20")
    # and   75x, allowed in bracket 3 (the lone owner's 1M), is above the owner's bracket 4 cap
    refused = position_leverage_set.preview(account=split[0], instrument="BTCUSDT", leverage="75")
    assert refused.refusal.startswith("Leverage 75x is above the 50x maximum")
    assert "over all your accounts" in refused.refusal
    allowed = position_leverage_set.preview(account=lone, instrument="BTCUSDT", leverage="75")
    assert allowed.refusal is None

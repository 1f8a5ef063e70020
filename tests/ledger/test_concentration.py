"""Concentration: above the published share of an instrument's open interest (what one owner
holds over all their accounts), the instrument is reduce-only for that owner."""

from decimal import Decimal

import pytest

from margin.engine.liquidity import concentration_refusal, concentration_share
from margin.errors import ApplicationError
from margin.models import ParameterVersion, Position
from margin.selectors.parameters import _engine_terms, parameters_in_force
from tests.factories import MarginAccountFactory
from tests.ledger.support import fund, set_mark, trade


def test_share_is_of_the_open_interest_or_of_the_floor_while_it_is_smaller():
    assert concentration_share(Decimal(30), Decimal(100), Decimal(50)) == Decimal("0.3")
    assert concentration_share(Decimal(30), Decimal(40), Decimal(100)) == Decimal("0.3")
    assert concentration_share(Decimal(0), Decimal(0), Decimal(0)) == 0
    reason = concentration_refusal(
        instrument="BTCUSDT",
        owner_notional=Decimal(26_000),
        open_interest=Decimal(26_000),
        limit_share=Decimal("0.25"),
        floor=Decimal(100_000),
    )
    assert reason.startswith("You would hold 26.0% of BTCUSDT's open interest")
    assert "reduce-only for you" in reason


@pytest.fixture
def thin_market(reference):
    """A published limit of 25 % of open interest, counted against at least 100,000 USD, and
    BTC at 10,000."""
    version = parameters_in_force()
    ParameterVersion.objects.filter(pk=version.pk).update(
        concentration_limit_share=Decimal("0.25"), concentration_floor_usd=Decimal(100_000)
    )
    _engine_terms.cache_clear()
    set_mark("BTCUSDT", "10000")
    yield
    _engine_terms.cache_clear()


def test_an_owner_above_the_limit_may_only_reduce_whatever_the_account(thin_market):
    # given one owner with two accounts and another owner, all funded
    first = MarginAccountFactory()
    second = MarginAccountFactory(owner=first.owner)
    other = MarginAccountFactory()
    for account in (first, second, other):
        fund(account, "USDT", "100000")
    # when  the owner buys 1 BTC (10 % of the floor) in one account
    trade(first, "buy", "1")
    # then  1.6 more in the other account would make 26 % of the floor: refused, with the reason
    with pytest.raises(ApplicationError, match=r"26\.0% of BTCUSDT.*reduce-only for you"):
        trade(second, "buy", "1.6")
    assert not Position.objects.filter(margin_account=second).exclude(quantity=0).exists()
    # and   reducing stays open to them
    trade(first, "sell", "0.5")
    # and   another owner is not held back by them
    trade(other, "buy", "2")
    # and   once the owner's share is back under the limit the same trade goes through
    trade(second, "buy", "1.6")
    held = Position.objects.filter(margin_account__owner=first.owner).values_list(
        "quantity", flat=True
    )
    assert sorted(held) == [Decimal("0.5"), Decimal("1.6")]

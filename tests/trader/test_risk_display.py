"""What the overview's gauge and the what-if say about risk agree with the account's figures: an
empty account is not in liquidation, and an isolated position past its liquidation price is not
"Healthy" because the cross pool is."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from margin.services.ledger import margin_account_open
from margin.services.margin_mode import position_margin_mode_switch
from tests.trader.factories import new_key

pytestmark = pytest.mark.django_db


def shocked_state(content: str) -> str:
    return re.search(r'data-testid="shocked-state">([^<]+)<', content).group(1)


def test_a_new_empty_account_reads_healthy_everywhere(htmx, trader_client, reference, trader):
    # given: an account with nothing in it
    empty = margin_account_open(owner=trader, name="Empty")
    # when
    page = trader_client.get(reverse("trader:account", args=[empty.pk])).content.decode()
    whatif = htmx.get(reverse("trader:whatif", args=[empty.pk]), {"shock": "-30"})
    # then: the badge, the gauge and the what-if agree (the bar empty, no liquidation colour)
    assert 'data-testid="account-state">Healthy<' in page
    assert re.search(r'class="g-bar level-healthy" x="0" y="6" width="0.00"', page)
    assert "level-liquidation" not in page
    assert shocked_state(whatif.content.decode()) == "Healthy"


def test_the_whatif_flags_an_isolated_position_past_its_liquidation_price(htmx, account):
    # given: the 0.1 BTC long isolated with 10% of its notional (10× leverage), the cross
    # pool holding 10,000 USDT and 0.5 BTC with no position behind it
    position_margin_mode_switch(
        account=account,
        instrument="BTCUSDT",
        mode="isolated",
        isolated_margin=Decimal("1000"),
        idempotency_key=new_key(),
    )
    # when: BTC −20% takes twice the fenced margin
    response = htmx.get(reverse("trader:whatif", args=[account.pk]), {"shock": "-20"})
    # then
    content = response.content.decode()
    assert shocked_state(content) == "Liquidation"
    assert 'data-testid="isolated-past-liquidation">BTCUSDT (isolated)' in content
    # and a small move leaves it healthy
    calm = htmx.get(reverse("trader:whatif", args=[account.pk]), {"shock": "-1"})
    assert shocked_state(calm.content.decode()) == "Healthy"

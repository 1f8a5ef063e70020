"""Funding where traders and the public read it: the positions fragment, the API's positions
and /disclosure/ (next funding time, predicted rate, funding paid so far, futures' expiry)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.engine.explain import format_number
from margin.engine.funding import funding_payment
from margin.models import FundingPayment, Instrument, MarginAccount, MarkPriceHistory, Position
from margin.selectors.funding import funding_time_due
from margin.services.funding import funding_settle_due
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(account, settings):
    """A funding time after the account opened its position, settled a second later (no
    premium samples: the interest rate)."""
    settings.FUNDING_ANCHOR = timezone.now()
    funding_settle_due(now=settings.FUNDING_ANCHOR + timedelta(seconds=1))
    return FundingPayment.objects.get(position__margin_account=account)


def test_the_positions_fragment_shows_next_funding_predicted_rate_and_funding_paid(
    htmx, account, settled
):
    content = htmx.get(reverse("trader:live", args=[account.pk])).content.decode()
    btc = Instrument.objects.get(symbol="BTCUSDT")
    upcoming = funding_time_due(btc, now=timezone.now()) + timedelta(seconds=480)
    assert 'data-testid="funding"' in content
    assert f"{upcoming:%H:%M} · 0.0100%" in content  # the interest rate, nothing else yet
    assert "last settled: 0.0100%" in content
    assert settled.amount < 0  # a long pays a positive rate
    assert f"−{-settled.amount:,.2f}" in content or f"{settled.amount:,.2f}" in content


def test_the_api_position_carries_its_funding(account, trader, settled):
    api = client_for(trader)
    answer = api.get(f"/api/v1/accounts/{account.pk}/positions/").json()
    (position,) = answer["results"]
    assert Decimal(position["cumulative_funding"]) == settled.amount
    assert Decimal(position["funding"]["predicted_rate"]) == Decimal("0.0001")
    assert Decimal(position["funding"]["last_rate"]) == Decimal("0.0001")
    assert position["funding"]["interval_hours"] == 8


def test_the_api_gives_a_dated_future_no_funding(account, trader):
    holder = MarginAccount.objects.create(
        owner=trader, name="Futures", credit_tier=account.credit_tier
    )
    Position.objects.create(
        margin_account=holder,
        instrument=Instrument.objects.get(symbol="BTCUSDT_261225"),
        quantity=Decimal("0.1"),
        entry_price=Decimal(95000),
    )
    answer = client_for(trader).get(f"/api/v1/accounts/{holder.pk}/positions/").json()
    (position,) = answer["results"]
    assert position["funding"] is None and Decimal(position["cumulative_funding"]) == 0


def test_disclosure_publishes_funding_terms_and_futures(client, account, settled):
    content = client.get(reverse("disclosure")).content.decode()
    assert 'id="funding"' in content and 'data-symbol="BTCUSDT"' in content
    assert "±0.7500%" in content  # the published cap
    assert "BTCUSDT_261225" in content and "2026-12-25 08:00" in content


def test_explain_shows_the_next_funding_rate_time_and_estimated_payment(htmx, account, settings):
    # given: a tenth of the interval went by with the perpetual 0.2% over its index: the
    # average premium is 0.2%, so F = 0.2% + clamp(0.01% − 0.2%, ±0.05%) = 0.15%
    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60.0
    now = timezone.now()
    settings.FUNDING_ANCHOR = now - timedelta(seconds=48)
    btc = Instrument.objects.get(symbol="BTCUSDT")
    index = btc.mark.index_price
    MarkPriceHistory.objects.bulk_create(
        MarkPriceHistory(
            instrument=btc,
            at=now - timedelta(seconds=40 - 10 * n),
            mark_price=index * Decimal("1.002"),
            index_price=index,
        )
        for n in range(4)
    )
    position = Position.objects.get(margin_account=account, instrument=btc)
    # when
    content = htmx.get(
        reverse("trader:explain", args=[account.pk]),
        {"figure": f"positions.{position.pk}.funding"},
    ).content.decode()
    # then: the time of the next funding, the rate and what the long of 0.1 would pay at it
    upcoming = settings.FUNDING_ANCHOR + timedelta(seconds=480)
    assert f"BTCUSDT: next funding at {upcoming:%Y-%m-%d %H:%M:%S} UTC" in content
    assert "over the n premium samples of the interval so far" in content
    assert "over the 4 premium samples" in content
    assert "<b>0.002</b>" in content  # P
    assert "<b>0.0015</b>" in content  # F (0.15%), under the cap of 0.75%
    payment = funding_payment(
        quantity=Decimal("0.1"), mark_price=btc.mark.mark_price, rate=Decimal("0.0015")
    )
    assert payment < 0 and f"<b>{format_number(payment)}</b>" in content


def test_a_dated_future_has_no_funding_to_explain(htmx, account):
    future = Position.objects.create(
        margin_account=account,
        instrument=Instrument.objects.get(symbol="BTCUSDT_261225"),
        quantity=Decimal("0.1"),
        entry_price=Decimal(95000),
    )
    explain = reverse("trader:explain", args=[account.pk])
    assert htmx.get(explain, {"figure": f"positions.{future.pk}.funding"}).status_code == 404
    assert htmx.get(explain, {"figure": "positions.999999.funding"}).status_code == 404

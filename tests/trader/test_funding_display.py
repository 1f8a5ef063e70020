"""Funding where traders and the public read it: the positions fragment, the API's positions
and /disclosure/ (next funding time, predicted rate, funding paid so far, futures' expiry)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.models import FundingPayment, Instrument, MarginAccount, Position
from margin.selectors.funding import funding_time_due
from margin.services.funding import funding_settle_due
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(account, settings):
    """A funding time one second ago, settled (no premium samples: the interest rate)."""
    settings.FUNDING_ANCHOR = timezone.now() - timedelta(seconds=1)
    funding_settle_due(now=timezone.now())
    return FundingPayment.objects.get(position__margin_account=account)


def test_the_positions_fragment_shows_next_funding_predicted_rate_and_funding_paid(
    htmx, account, settled
):
    content = htmx.get(reverse("trader:positions", args=[account.pk])).content.decode()
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

"""A day of the demo market (`make run`'s data and jobs) on a simulated clock: funding settles
every 8 market hours, the short-dated demo future expires within minutes of real time and is
listed again, the trader sees the payments and the notice, and the ledger check finds nothing."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from margin.bench.demo_day import demo_day_run
from margin.models import (
    Fill,
    FundingRate,
    Instrument,
    JournalKind,
    MarginAccount,
    Notification,
    Position,
)
from margin.selectors.ledger import ledger_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings):
    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60.0
    settings.DEMO_FUTURE_ENABLED, settings.DEMO_FUTURE_TERM_HOURS = True, 12.0
    settings.FUNDING_SETTLEMENT_ENABLED = True
    # Without the synthetic book: its liquidations close positions between funding times, and
    # this test counts the payers as the positions still open at the end of the day.
    call_command("seed_demo", "--book-accounts", "0", stdout=io.StringIO())
    return MarginAccount.objects.get(owner__username="trader", name="Main")


def test_a_demo_day_pays_funding_settles_the_demo_future_and_keeps_the_ledger(demo, client):
    # given: the demo book, the trader's Main account holding the short-dated demo future
    short_dated = (
        Instrument.objects.filter(kind=Instrument.Kind.FUTURE, is_active=True)
        .order_by("expiry")
        .first()
    )
    assert short_dated.symbol != "BTCUSDT_261225"
    held = Position.objects.get(margin_account=demo, instrument=short_dated)
    assert held.quantity == Decimal("0.05")
    minutes_to_expiry = (short_dated.expiry - timezone.now()).total_seconds() / 60
    assert 11 < minutes_to_expiry <= 13  # 12 market hours at the demo's speed of 60
    # when: 24 market hours (24 real minutes) of ticks every 30 s
    day = demo_day_run(start=timezone.now(), market_hours=24, step_s=30)
    # then: every funding time the ticks passed is settled once per perpetual (the one due at
    # the first tick and those of the day: 24 market hours cross three 8-hour grid points)
    rates = list(FundingRate.objects.all())
    funding_times = {rate.funding_time for rate in rates}
    perpetuals = Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL, is_active=True).count()
    assert day.ticks == 48 and day.funding_times == len(rates) == perpetuals * len(funding_times)
    assert len(funding_times) in (3, 4)
    # and each one was paid by exactly the perpetual positions open at it (opened before it)
    perpetual_positions = list(
        Position.objects.filter(instrument__kind=Instrument.Kind.PERPETUAL).exclude(quantity=0)
    )
    for rate in rates:
        open_at_it = [
            p
            for p in perpetual_positions
            if p.instrument_id == rate.instrument_id and p.opened_at <= rate.funding_time
        ]
        assert rate.positions == len(open_at_it)
        assert {p.position_id for p in rate.payments.all()} == {p.pk for p in open_at_it}
    assert day.funding_payments == sum(rate.positions for rate in rates) >= 3 * 5
    # the demo future was noticed, expired, settled at its TWAP and listed again
    short_dated.refresh_from_db()
    assert short_dated.symbol in day.futures_settled and short_dated.settlement_price > 0
    assert day.expiry_notices >= 1 and len(day.futures_listed) == 1
    (settled,) = Fill.objects.filter(position__margin_account=demo, reason=Fill.Reason.SETTLEMENT)
    assert settled.price == short_dated.settlement_price
    # the trader sees the funding payments and the settlement in the history, and the notice
    funding = ledger_history(account=demo, filters={"kind": JournalKind.FUNDING})
    assert len(funding) >= 3 and all(entry.amount for entry in funding)
    assert ledger_history(account=demo, filters={"kind": JournalKind.SETTLEMENT})
    client.force_login(demo.owner)
    history = client.get(reverse("trader:history", args=[demo.pk])).content.decode()
    assert "funding" in history.lower() and "settlement" in history.lower()
    notice = Notification.objects.get(account=demo, kind=Notification.Kind.EXPIRY)
    assert short_dated.symbol in notice.text
    assert short_dated.symbol in client.get(reverse("trader:notifications")).content.decode()
    # and the ledger check of the whole book finds no difference
    assert day.ledger.clean

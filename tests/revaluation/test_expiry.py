"""A dated future at expiry, on PostgreSQL: settled at the index TWAP of its last 30 minutes
(Binance delivery contracts: "the settlement price is the arithmetic mean of the index price
over the last half hour before delivery"; our samples are irregular, so it is time-weighted),
every position closed at it through the ledger, trading stopped, the next quarterly listed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import (
    AssetPriceHistory,
    Bracket,
    Fill,
    Instrument,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    Notification,
    Position,
)
from margin.selectors.ledger import ledger_differences, ledger_history
from margin.services.expiry import expiry_run, next_quarterly_expiry
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db

FUTURE = "BTCUSDT_261225"


@pytest.fixture
def demo_speed(settings):
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0  # 30 minutes of market time: 30 real seconds


def wallet(account):
    return LedgerAccount.objects.get(
        margin_account=account, kind=LedgerAccountKind.WALLET, asset__symbol="USDT"
    ).balance


def test_a_future_settles_every_position_at_the_index_twap_and_the_next_is_listed(
    market, demo_speed, now
):
    # given: the future expires in a minute; a long in cross and a short isolated
    expiry = now + timedelta(seconds=60)
    Instrument.objects.filter(symbol=FUTURE).update(expiry=expiry)
    long_ = funded_account(usdt="5000", fills=[(FUTURE, "buy", "0.1")])
    short = funded_account(usdt="9000", fills=[(FUTURE, "sell", "0.2")])
    position_margin_mode_switch(
        account=short,
        instrument=FUTURE,
        mode="isolated",
        isolated_margin=Decimal("3000"),
        idempotency_key="test-isolate-future",
    )
    # and the BTC index over the last 30 seconds (30 minutes of market time) before expiry
    btc = Instrument.objects.get(symbol=FUTURE).underlying
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(asset=btc, at=expiry + timedelta(seconds=s), price=price)
        for s, price in ((-40, 90000), (-20, 96000), (-5, 99000), (5, 1))
    )
    entries = {a.pk: Position.objects.get(margin_account=a).entry_price for a in (long_, short)}
    wallets = {a.pk: wallet(a) for a in (long_, short)}
    # when: the first tick after expiry
    run = expiry_run(now=expiry + timedelta(seconds=1))
    # then: (10 × 90,000 + 15 × 96,000 + 5 × 99,000) / 30 = 94,500
    future = Instrument.objects.get(symbol=FUTURE)
    assert run.settled == [FUTURE] and run.closed == 2
    assert future.settlement_price == Decimal(94500) and not future.is_active
    fills = Fill.objects.filter(reason=Fill.Reason.SETTLEMENT)
    assert {(f.price, f.quantity) for f in fills} == {
        (Decimal(94500), Decimal("-0.1")),
        (Decimal(94500), Decimal("0.2")),
    }
    assert not Position.objects.filter(instrument=future).exclude(quantity=0).exists()
    long_pnl = Decimal("0.1") * (94500 - entries[long_.pk])
    assert wallet(long_) - wallets[long_.pk] == long_pnl
    (entry,) = ledger_history(account=long_, filters={"kind": JournalKind.SETTLEMENT})
    assert entry.amount == long_pnl
    # the isolated short's margin, with its PnL, is back on its wallet
    short_pnl = Decimal("-0.2") * (94500 - entries[short.pk])
    assert wallet(short) - wallets[short.pk] == Decimal(3000) + short_pnl
    assert ledger_differences().clean
    # the next quarterly (last Friday of March 2027, 08:00 UTC) is live with the same brackets
    assert run.listed == ["BTCUSDT_270326"]
    listed = Instrument.objects.get(symbol="BTCUSDT_270326")
    assert listed.is_active and listed.expiry == datetime(2027, 3, 26, 8, tzinfo=UTC)
    assert Bracket.objects.filter(instrument=listed).count() == future.brackets.count() > 0
    # a replayed tick changes nothing; the expired contract no longer trades
    again = expiry_run(now=expiry + timedelta(seconds=6))
    assert (again.settled, again.closed, again.listed) == ([], 0, [])
    assert fills.count() == 2
    with pytest.raises(ApplicationError, match="expired"):
        position_market_fill(
            account=long_,
            instrument=FUTURE,
            side="buy",
            quantity=Decimal("0.1"),
            idempotency_key="test-after-expiry",
        )


def test_holders_are_told_a_day_of_market_time_before_expiry(market, demo_speed, now):
    # given: a day of market time is 24 real minutes at the demo's speed
    holder = funded_account(usdt="5000", fills=[(FUTURE, "buy", "0.1")])
    funded_account(usdt="5000")
    Instrument.objects.filter(symbol=FUTURE).update(expiry=now + timedelta(minutes=30))
    # when / then: not yet 25 minutes out, once inside the day, and only once
    assert expiry_run(now=now).notified == 0
    assert expiry_run(now=now + timedelta(minutes=7)).notified == 1
    assert expiry_run(now=now + timedelta(minutes=8)).notified == 0
    (note,) = Notification.objects.filter(kind=Notification.Kind.EXPIRY)
    assert note.account_id == holder.pk and FUTURE in note.text


def test_quarterly_expiries_are_binance_last_fridays():
    assert next_quarterly_expiry(datetime(2026, 12, 3, tzinfo=UTC)) == datetime(
        2026, 12, 25, 8, tzinfo=UTC
    )
    assert next_quarterly_expiry(datetime(2026, 12, 25, 8, tzinfo=UTC)) == datetime(
        2027, 3, 26, 8, tzinfo=UTC
    )
    assert next_quarterly_expiry(datetime(2027, 4, 1, tzinfo=UTC)) == datetime(
        2027, 6, 25, 8, tzinfo=UTC
    )

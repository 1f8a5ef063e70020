"""Funding settlement through the ledger, on PostgreSQL: every open perpetual position pays
−side × |quantity| × mark × rate (Binance USD-M: "Funding Amount = Nominal Value of Positions ×
Funding Rate"; longs pay a positive rate), once per (instrument, funding time)."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from margin.engine.funding import funding_payment
from margin.models import (
    AccountState,
    FundingPayment,
    FundingRate,
    Instrument,
    Journal,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    MarkPriceHistory,
    Position,
)
from margin.selectors.figures import figures_now
from margin.selectors.funding import (
    cumulative_funding,
    funding_outlooks,
    funding_rate_for_mark,
    funding_series,
)
from margin.selectors.ledger import ledger_differences, ledger_history
from margin.services import funding as funding_service
from margin.services.funding import funding_settle_due
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from margin.services.revaluation import revaluation_tick_run
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db

INTERVAL_S = 8 * 3600 / 60  # 8 hours of market time at the demo's speed of 60


@pytest.fixture
def now():
    """The test's clock runs a minute ahead of the wall clock, which stamps the fills: the
    positions a test opens while it sets up its book are open at the funding time just before
    `now`, as they would be at a real funding time (only positions open at it pay)."""
    return timezone.now() + timedelta(minutes=1)


@pytest.fixture
def funding_time(settings, now):
    """A funding time one second ago (the grid anchored on it)."""
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    settings.FUNDING_SETTLEMENT_ENABLED = True
    settings.FUNDING_ANCHOR = now - timedelta(seconds=1)
    return settings.FUNDING_ANCHOR


def premium_through_interval(symbol: str, *, until, premium: Decimal, samples: int = 20):
    """Mark price history of the interval ending `until`: every mark `premium` above its index."""
    instrument = Instrument.objects.get(symbol=symbol)
    index = instrument.mark.index_price
    step = INTERVAL_S / samples
    MarkPriceHistory.objects.bulk_create(
        MarkPriceHistory(
            instrument=instrument,
            at=until - timedelta(seconds=INTERVAL_S - (n + 1) * step),
            mark_price=index * (1 + premium),
            index_price=index,
        )
        for n in range(samples)
    )


def balance(account, kind=LedgerAccountKind.WALLET):
    return LedgerAccount.objects.get(
        margin_account=account, kind=kind, asset__symbol="USDT"
    ).balance


def test_longs_pay_shorts_through_the_funding_account_and_the_book_stays_balanced(
    market, funding_time, now
):
    # given: a long and a short on BTCUSDT (cross), a short on ETHUSDT isolated; the premium
    # was 0.1% through the interval: F = 0.1% + clamp(0.01% − 0.1%, ±0.05%) = 0.05%
    long_btc = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.2")])
    short_btc = funded_account(usdt="5000", fills=[("BTCUSDT", "sell", "0.05")])
    short_eth = funded_account(usdt="9000", fills=[("ETHUSDT", "sell", "3")])
    position_margin_mode_switch(
        account=short_eth,
        instrument="ETHUSDT",
        mode="isolated",
        isolated_margin=Decimal("2000"),
        idempotency_key="test-isolate-eth",
    )
    premium_through_interval("BTCUSDT", until=funding_time, premium=Decimal("0.001"))
    wallets_before = {a.pk: balance(a) for a in (long_btc, short_btc, short_eth)}
    isolated_before = balance(short_eth, LedgerAccountKind.ISOLATED)
    # when
    settled = funding_settle_due(now=now)
    # then: one rate per perpetual (BTC with its premium; ETH, no premium, at the interest)
    rates = {r.instrument.symbol: r for r in FundingRate.objects.select_related("instrument")}
    assert set(rates) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert rates["BTCUSDT"].rate == Decimal("0.0005") and rates["BTCUSDT"].samples == 20
    assert rates["ETHUSDT"].rate == Decimal("0.0001")
    assert rates["BTCUSDT"].funding_time == funding_time
    btc_mark = rates["BTCUSDT"].mark_price
    long_paid = funding_payment(
        quantity=Decimal("0.2"), mark_price=btc_mark, rate=Decimal("0.0005")
    )
    assert long_paid < 0
    assert balance(long_btc) - wallets_before[long_btc.pk] == long_paid
    assert balance(short_btc) - wallets_before[short_btc.pk] == funding_payment(
        quantity=Decimal("-0.05"), mark_price=btc_mark, rate=Decimal("0.0005")
    )
    # the isolated short is paid on its isolated margin, not on its wallet
    eth = rates["ETHUSDT"]
    assert balance(short_eth) == wallets_before[short_eth.pk]
    assert balance(short_eth, LedgerAccountKind.ISOLATED) - isolated_before == funding_payment(
        quantity=Decimal("-3"), mark_price=eth.mark_price, rate=eth.rate
    )
    # zero-sum: what the positions got, the funding account gave, journal by journal
    paid = FundingPayment.objects.aggregate(total=Sum("amount"))["total"]
    funding_account = LedgerAccount.objects.get(
        kind=LedgerAccountKind.FUNDING, asset__symbol="USDT"
    )
    assert funding_account.balance == -paid
    # one journal: a line per paying ledger account and one on the funding account
    assert settled.positions == 3 and settled.journals == 1
    (journal,) = Journal.objects.filter(kind=JournalKind.FUNDING)
    assert journal.entries.count() == 4
    assert ledger_differences().clean
    # history shows it, and the position's cumulative funding
    (entry,) = ledger_history(account=long_btc, filters={"kind": JournalKind.FUNDING})
    assert entry.amount == long_paid and "BTCUSDT 0.0500%" in entry.journal.memo
    position = Position.objects.get(margin_account=long_btc)
    assert cumulative_funding([position.pk])[position.pk] == long_paid
    assert funding_series(position.pk) == [(funding_time, long_paid)]


def test_a_replayed_settlement_books_nothing_twice(market, funding_time, now):
    # given
    funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.2")])
    premium_through_interval("BTCUSDT", until=funding_time, premium=Decimal("0.002"))
    first = funding_settle_due(now=now)
    journals = Journal.objects.filter(kind=JournalKind.FUNDING).count()
    # when: the same funding time again (a replayed tick), and a tick that runs it in turn
    again = funding_settle_due(now=now + timedelta(seconds=3))
    revaluation_tick_run(now=now + timedelta(seconds=4))
    # then
    assert first.positions == 1 and again.rates == []
    assert Journal.objects.filter(kind=JournalKind.FUNDING).count() == journals == 1
    assert FundingPayment.objects.count() == 1
    # the next funding time settles again
    later = funding_settle_due(now=funding_time + timedelta(seconds=INTERVAL_S + 1))
    assert later.positions == 1 and FundingPayment.objects.count() == 2
    assert ledger_differences().clean


def test_a_random_book_pays_exactly_the_reference_and_sums_to_zero(market, funding_time, now):
    # given: forty accounts long or short BTC and ETH of assorted sizes, some isolated
    rng = random.Random(16)
    for n in range(40):
        fills = [
            (symbol, rng.choice(["buy", "sell"]), str(Decimal(rng.randint(1, 500)) / 1000))
            for symbol in ("BTCUSDT", "ETHUSDT")
            if rng.random() < 0.8
        ]
        account = funded_account(usdt="20000", fills=fills)
        if fills and n % 5 == 0:
            position_margin_mode_switch(
                account=account,
                instrument=fills[0][0],
                mode="isolated",
                isolated_margin=Decimal("6000"),
                idempotency_key=f"test-isolate-{n}",
            )
    premium_through_interval("BTCUSDT", until=funding_time, premium=Decimal("-0.0013"))
    premium_through_interval("ETHUSDT", until=funding_time, premium=Decimal("0.0031"))
    # when
    funding_settle_due(now=now)
    # then: each payment is the engine's reference on the position's size at the rate's mark
    rates = {r.instrument_id: r for r in FundingRate.objects.all()}
    payments = FundingPayment.objects.select_related("position")
    assert payments.count() == Position.objects.exclude(quantity=0).count()
    for payment in payments:
        rate = rates[payment.position.instrument_id]
        assert payment.amount == funding_payment(
            quantity=payment.position.quantity, mark_price=rate.mark_price, rate=rate.rate
        )
    # every funding journal balances and the funding account nets the book out exactly
    for journal in Journal.objects.filter(kind=JournalKind.FUNDING):
        assert sum(e.amount for e in journal.entries.all()) == 0
    total = FundingPayment.objects.aggregate(total=Sum("amount"))["total"]
    funding_account = LedgerAccount.objects.get(
        kind=LedgerAccountKind.FUNDING, asset__symbol="USDT"
    )
    assert total + funding_account.balance == 0
    assert ledger_differences().clean


def test_funding_alone_sends_an_account_to_liquidation(market, funding_time, now, later):
    # given: a long of 3 ETH bought at 3,400 with 1,100 USDT; ETH falls to 3,053, leaving a
    # margin ratio of about 68% (a warning, far from a liquidation on prices alone)
    account = funded_account(usdt="1100", fills=[("ETHUSDT", "buy", "3")])
    market_prices(at=later(1), BTC=95000, ETH=3230, SOL=230, USDT=1, USDC=1)
    market_prices(at=later(2), BTC=95000, ETH=3053, SOL=230, USDT=1, USDC=1)
    before = figures_now(account).quote
    assert Decimal("0.5") < before.margin_ratio < 1
    # and the perpetual traded 2% over its index through the interval: F = 2% − 0.05%, above
    # the contract's published cap of 0.75%
    premium_through_interval("ETHUSDT", until=funding_time, premium=Decimal("0.02"))
    # when: the tick after the funding time
    run = revaluation_tick_run(now=later(3))
    # then: the capped rate, 3 × 3,114 × 0.75% ≈ 70 USDT paid, is what liquidates it
    rate = FundingRate.objects.get(instrument__symbol="ETHUSDT")
    assert rate.rate == Decimal("0.0075")
    assert FundingPayment.objects.get(position__margin_account=account).amount < -70
    assert (account.pk, run.start.tick.pk) in [
        pair for shard in run.shards for pair in shard.to_liquidate
    ]
    account.refresh_from_db()
    assert account.state in (AccountState.LIQUIDATION, AccountState.BANKRUPT)


def test_the_predicted_rate_and_next_funding_time(market, funding_time, now):
    premium_through_interval(
        "BTCUSDT", until=funding_time + timedelta(seconds=INTERVAL_S), premium=Decimal("0.0002")
    )
    outlook = funding_outlooks(now=now + timedelta(seconds=INTERVAL_S - 10))["BTCUSDT"]
    assert outlook.next_funding_time == funding_time + timedelta(seconds=INTERVAL_S)
    # within the dampener the rate is the interest rate (Binance: F = I)
    assert outlook.predicted_rate == Decimal("0.0001") and outlook.predicted.samples > 0


def test_the_mark_price_reads_the_last_settled_rate_and_the_time_left(market, funding_time, now):
    # given: BTCUSDT settled at the interest rate one second ago
    btc = Instrument.objects.get(symbol="BTCUSDT")
    assert funding_rate_for_mark(instrument_id=btc.pk, now=now)[0] == 0  # none settled yet
    funding_settle_due(now=now)
    # when: two minutes of the eight before the next funding have gone
    rate, left = funding_rate_for_mark(
        instrument_id=btc.pk, now=funding_time + timedelta(seconds=120)
    )
    # then: index × (1 + rate × left) is the mark's funding basis
    assert rate == Decimal("0.0001") and left == pytest.approx(0.75)


@pytest.fixture(params=["postgresql", "embedded"])
def booked_by(request, monkeypatch):
    """The settlement's two ways of booking: set-based SQL on PostgreSQL, and the embedded
    demo's Decimal path (SQLite in `make run`), here run on PostgreSQL too."""
    if request.param == "embedded":
        monkeypatch.setattr(funding_service, "_post_in_sql", funding_service._post_in_python)
    return request.param


def test_only_positions_open_at_the_funding_time_pay_on_their_size_at_it(
    market, settings, booked_by
):
    # given: (Binance: only traders with open positions at the funding timestamp pay or
    # receive) before the funding time, a long that stays, a long already closed again, a long
    # of 0.2 that will grow, and an isolated short that will close
    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60.0
    settings.FUNDING_SETTLEMENT_ENABLED = True
    stays = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.1")])
    closed_before = funded_account(
        usdt="5000", fills=[("BTCUSDT", "buy", "0.1"), ("BTCUSDT", "sell", "0.1")]
    )
    grows = funded_account(usdt="9000", fills=[("BTCUSDT", "buy", "0.2")])
    closes_after = funded_account(usdt="9000", fills=[("ETHUSDT", "sell", "2")])
    position_margin_mode_switch(
        account=closes_after,
        instrument="ETHUSDT",
        mode="isolated",
        isolated_margin=Decimal("1500"),
        idempotency_key="test-isolate-closes-after",
    )
    # and the funding time passes; then one account opens, one grows, one closes
    funding_time = timezone.now()
    settings.FUNDING_ANCHOR = funding_time
    opens_after = funded_account(usdt="5000", fills=[("BTCUSDT", "sell", "0.4")])
    position_market_fill(
        account=grows,
        instrument="BTCUSDT",
        side="buy",
        quantity=Decimal("0.3"),
        idempotency_key="test-grows",
    )
    position_market_fill(
        account=closes_after,
        instrument="ETHUSDT",
        side="buy",
        quantity=Decimal("2"),
        idempotency_key="test-closes-after",
    )
    wallet_before = balance(closes_after)
    # when: the tick after the funding time settles it (no premium: the interest rate)
    settled = funding_settle_due(now=timezone.now())
    # then: each position pays on what it held at the funding time
    rates = {r.instrument.symbol: r for r in settled.rates}
    paid = {
        p.position.margin_account_id: p.amount
        for p in FundingPayment.objects.select_related("position")
    }

    def owed(symbol, quantity):
        rate = rates[symbol]
        return funding_payment(
            quantity=Decimal(quantity), mark_price=rate.mark_price, rate=rate.rate
        )

    assert rates["BTCUSDT"].funding_time == funding_time
    assert paid == {
        stays.pk: owed("BTCUSDT", "0.1"),
        grows.pk: owed("BTCUSDT", "0.2"),
        closes_after.pk: owed("ETHUSDT", "-2"),
    }
    assert opens_after.pk not in paid and closed_before.pk not in paid
    # the closed isolated short's margin went back to its wallet: the wallet receives
    assert balance(closes_after) - wallet_before == owed("ETHUSDT", "-2") > 0
    assert rates["BTCUSDT"].positions == 2 and rates["ETHUSDT"].positions == 1
    assert rates["BTCUSDT"].paid_by_longs == -(owed("BTCUSDT", "0.1") + owed("BTCUSDT", "0.2"))
    assert ledger_differences().clean

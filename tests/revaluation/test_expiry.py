"""A dated future at expiry, on PostgreSQL: settled at the index TWAP of its last 30 minutes
(Binance delivery contracts: "the settlement price is the arithmetic mean of the index price
over the last half hour before delivery"; our samples are irregular, so it is time-weighted),
every position closed at it through the ledger, trading stopped, the next quarterly listed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from margin.engine.fills import closing_side
from margin.errors import ApplicationError
from margin.models import (
    AssetPriceHistory,
    Bracket,
    Fill,
    Instrument,
    Journal,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    Notification,
    Position,
)
from margin.selectors.ledger import ledger_differences, ledger_history
from margin.services import expiry as expiry_service
from margin.services.expiry import (
    expiry_claim_due,
    expiry_run,
    expiry_settle_accounts,
    next_quarterly_expiry,
    settlement_value,
)
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_fill, position_market_fill
from margin.services.revaluation import revaluation_tick_run
from tests.options_support import options_listed, series
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
    assert note.account_id == holder.pk and note.user_id == holder.owner_id
    expiry = f"{now + timedelta(minutes=30):%Y-%m-%d %H:%M}"
    assert note.text == (
        f"{FUTURE} expires at {expiry} UTC: open positions will be settled at the average index "
        "price of its last 30 minutes. Close or roll your position before then to choose your "
        "price."
    )


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


@pytest.fixture(params=["postgresql", "embedded"])
def booked_by(request, monkeypatch):
    """The settlement's two ways of booking: set-based SQL on PostgreSQL, and the embedded
    demo's Decimal path (SQLite in `make run`), here run on PostgreSQL too."""
    if request.param == "embedded":
        monkeypatch.setattr(expiry_service, "_post_in_sql", expiry_service._post_in_python)
    return request.param


def expiring_book(settings, now):
    """Options of the nearest term, and the quarterly future a market hour after them, held
    long and short, in cross and (the future) isolated, one isolated short losing more than its
    margin. The BTC index's TWAP is 96,000 over the options' last 30 market minutes and 130,000
    over the future's. Returns when both have expired."""
    options_listed(settings, now=now)
    call, put, otm_put = series("call", 94000), series("put", 98000), series("put", 94000)
    expiry = call.expiry
    Instrument.objects.filter(symbol=FUTURE).update(expiry=expiry + timedelta(seconds=60))
    funded_account(usdt="20000", fills=[(call.symbol, "buy", "0.4"), (FUTURE, "buy", "0.1")])
    funded_account(usdt="40000", fills=[(call.symbol, "sell", "0.3"), (otm_put.symbol, "buy", "1")])
    funded_account(usdt="40000", fills=[(put.symbol, "sell", "1"), (FUTURE, "sell", "0.05")])
    for side, size in (("sell", "0.2"), ("buy", "0.1")):
        isolated = funded_account(usdt="9000", fills=[(FUTURE, side, size)])
        position_margin_mode_switch(
            account=isolated,
            instrument=FUTURE,
            mode="isolated",
            isolated_margin=Decimal(3000),
            idempotency_key=f"test-isolate-{side}",
        )
    # a long of 0.5 whose realized PnL falls on a tie at the ledger's 18th decimal:
    # 0.5 × (130,000 − 94,000.000000000000000003) — half to even keeps …998
    tie = funded_account(usdt="20000", fills=[(FUTURE, "buy", "0.5")])
    Position.objects.filter(margin_account=tie).update(
        entry_price=Decimal("94000.000000000000000003")
    )
    btc = call.underlying
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(asset=btc, at=expiry + timedelta(seconds=s), price=price)
        for s, price in ((-40, 95000), (-15, 97000), (5, 1), (25, 130000))
    )
    return expiry + timedelta(seconds=61)


def book_figures() -> dict:
    """Every balance (by ledger account, named by its owner), position and settlement fill."""
    return {
        "balances": {
            (kind, account, position, asset): balance
            for kind, account, position, asset, balance in LedgerAccount.objects.values_list(
                "kind", "margin_account_id", "position_id", "asset_id", "balance"
            )
        },
        "positions": set(
            Position.objects.values_list("pk", "quantity", "entry_price", "realized_pnl")
        ),
        "fills": sorted(
            (f.position_id, f.quantity, f.price, f.fee, f.realized_pnl, f.journal_id is not None)
            for f in Fill.objects.filter(reason=Fill.Reason.SETTLEMENT)
        ),
    }


def test_the_set_based_settlement_books_what_closing_each_position_by_its_fill_booked(
    market, settings, booked_by
):
    # given: the book at expiry
    at = expiring_book(settings, market)
    fund = LedgerAccount.objects.get(
        kind=LedgerAccountKind.INSURANCE, asset__symbol="USDT", margin_account=None
    )
    fund_before = fund.balance
    # and what closing each position by the trader's forced fill books (rolled back)
    with transaction.atomic():
        expiry_claim_due(now=at)
        for position in (
            Position.objects.filter(instrument__settled_at__isnull=False)
            .exclude(quantity=0)
            .select_related("margin_account", "instrument")
            .order_by("instrument_id", "pk")
        ):
            position_fill(
                account=position.margin_account,
                instrument=position.instrument.symbol,
                side=closing_side(position.quantity),
                quantity=abs(position.quantity),
                price=settlement_value(position.instrument),
                reason=Fill.Reason.SETTLEMENT,
                reference=f"{position.instrument.symbol}:{position.pk}",
            )
        one_by_one = book_figures()
        transaction.set_rollback(True)
    # when: the set-based settlement of every account at once
    run = expiry_run(now=at)
    # then: the same balances (wallets, isolated margins, market, insurance fund), positions
    # (flat, realized PnL) and fills, to the ledger's last decimal, in one journal
    assert run.closed == 9 and len(one_by_one["fills"]) == 9
    assert book_figures() == one_by_one
    assert Journal.objects.filter(kind=JournalKind.SETTLEMENT).count() == 1
    tie = Position.objects.get(entry_price=0, realized_pnl=Decimal("17999.999999999999999998"))
    assert tie.fills.get(reason=Fill.Reason.SETTLEMENT).realized_pnl == tie.realized_pnl
    assert ledger_differences().clean
    # and the insurance fund made the isolated short whole: its 3,000 of margin lost 0.2 ×
    # (130,000 − entry) ≈ 7,000
    fund.refresh_from_db()
    assert -Decimal(4100) < fund.balance - fund_before < -Decimal(3900)


def test_each_shard_settles_its_own_accounts_once(market, settings, booked_by):
    # given: the book at expiry, in shards of three accounts
    settings.REVALUATION_SHARD_SIZE = 3
    at = expiring_book(settings, market)
    open_ = Position.objects.filter(instrument__expiry__lte=at).exclude(quantity=0)
    held = open_.count()
    # when: the tick, its dispatcher fixing the settlement prices, its shards closing
    tick = revaluation_tick_run(now=at)
    # then: every expired position closed in its shard, a journal per shard holding some
    assert not open_.exists()
    assert sum(shard.expiry_positions for shard in tick.shards) == held == 9
    assert (
        Journal.objects.filter(kind=JournalKind.SETTLEMENT).count()
        == len([shard for shard in tick.shards if shard.expiry_positions])
        >= 2
    )
    assert ledger_differences().clean
    # and a settlement run again (a redelivered shard) closes nothing, pays nothing
    before = book_figures()
    again = expiry_settle_accounts(first_account_id=0, last_account_id=2**63 - 1, now=at)
    assert again.positions == 0 and book_figures() == before
    # a second settlement fill of a position is refused by the database
    settled = Fill.objects.filter(reason=Fill.Reason.SETTLEMENT).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Fill.objects.create(
            position_id=settled.position_id, quantity=1, price=1, reason=Fill.Reason.SETTLEMENT
        )

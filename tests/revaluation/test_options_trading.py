"""Buying and selling options through the trade service (PostgreSQL): the premium changes
hands through the ledger, the account's requirement is the portfolio grid, isolated mode is
refused, and at expiry each position is paid its intrinsic value on the index TWAP."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from margin.engine.options import portfolio_margin
from margin.errors import ApplicationError
from margin.models import (
    AssetPriceHistory,
    Fill,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    MarkPrice,
    Notification,
    Position,
)
from margin.selectors.accounts import account_state_load
from margin.selectors.ledger import ledger_differences, ledger_history
from margin.selectors.market import latest_snapshot
from margin.services.expiry import expiry_run
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.positions import position_market_fill
from margin.services.revaluation import revaluation_tick_run
from tests.options_support import series
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db


def wallet(account) -> Decimal:
    return LedgerAccount.objects.get(
        margin_account=account, kind=LedgerAccountKind.WALLET, asset__symbol="USDT"
    ).balance


def house(kind: str) -> Decimal:
    return LedgerAccount.objects.get(
        margin_account__isnull=True, kind=kind, asset__symbol="USDT"
    ).balance


def test_a_long_pays_the_premium_and_a_short_receives_it_through_the_ledger(options_market):
    call, put = series("call", 98000, 1), series("put", 94000, 1)
    call_mark = MarkPrice.objects.get(instrument=call).mark_price
    put_mark = MarkPrice.objects.get(instrument=put).mark_price
    buyer = funded_account(usdt="20000")
    seller = funded_account(usdt="50000")
    market_before = house(LedgerAccountKind.MARKET)
    # when: the buyer buys 0.5 calls, the seller sells 2 puts, at the marks
    position_market_fill(
        account=buyer,
        instrument=call.symbol,
        side="buy",
        quantity=Decimal("0.5"),
        idempotency_key="buy-call",
    )
    position_market_fill(
        account=seller,
        instrument=put.symbol,
        side="sell",
        quantity=Decimal("2"),
        idempotency_key="sell-put",
    )
    # then: the premium moved between the wallets and the market account, less the fee:
    # min(0.05 % of the forward, 12.5 % of the premium) per contract
    forward = MarkPrice.objects.get(instrument=call).index_price
    call_fee = min(Decimal("0.5") * forward * Decimal("0.0005"), Decimal("0.5") * call_mark / 8)
    put_fee = min(2 * forward * Decimal("0.0005"), 2 * put_mark / 8)
    assert wallet(buyer) == Decimal(20000) - Decimal("0.5") * call_mark - call_fee
    assert wallet(seller) == Decimal(50000) + 2 * put_mark - put_fee
    assert house(LedgerAccountKind.MARKET) - market_before == Decimal("0.5") * call_mark - (
        2 * put_mark
    )
    (fill,) = Fill.objects.filter(position__margin_account=buyer)
    assert (fill.price, fill.quantity, fill.fee) == (call_mark, Decimal("0.5"), call_fee)
    assert Position.objects.get(margin_account=seller).quantity == Decimal(-2)
    assert ledger_differences().clean
    # and closing the call pays its premium back at the mark (a realized PnL on the position)
    position_market_fill(
        account=buyer,
        instrument=call.symbol,
        side="sell",
        quantity=Decimal("0.5"),
        idempotency_key="close-call",
    )
    assert wallet(buyer) == Decimal(20000) - 2 * call_fee
    assert ledger_differences().clean


def test_the_account_is_margined_by_the_grid_with_the_short_at_its_value(options_market):
    put = series("put", 96000, 2)
    seller = funded_account(
        usdt="30000", fills=[(put.symbol, "sell", "1"), ("BTCUSDT", "buy", "0.1")]
    )
    state = account_state_load(seller)
    account = state.engine_input()
    (option,) = account.options
    assert (option.side, option.quantity, option.strike, option.option_type) == (
        -1,
        Decimal(1),
        Decimal(96000),
        "put",
    )
    assert option.entry_price == 0  # the premium sits in the wallet
    assert option.implied_vol == MarkPrice.objects.get(instrument=put).implied_vol
    quote = state.quote()
    grid = portfolio_margin(account.options, account.positions)
    assert quote.initial_margin == grid.initial_margin > 0
    assert quote.maintenance_margin == grid.maintenance_margin
    (btc,) = grid.underlyings
    assert btc.scan_risk > 0 and len(btc.losses) == 24
    # the short counts at its whole value against the premium received in the wallet
    (row,) = quote.options
    perp_pnl = sum(p.unrealized_pnl for p in quote.positions)
    assert row.unrealized_pnl + row.mark_price == 0
    assert abs(quote.unrealized_pnl - perp_pnl - row.unrealized_pnl) < Decimal("1e-20")


def test_options_are_refused_in_isolated_mode_and_without_margin(options_market):
    put = series("put", 96000)
    account = funded_account(usdt="2000")
    with pytest.raises(ApplicationError, match="cross pool only"):
        position_margin_mode_switch(
            account=account,
            instrument=put.symbol,
            mode="isolated",
            isolated_margin=Decimal(500),
            idempotency_key="isolate-option",
        )
    # a short of 10 puts needs far more than 2,000 of initial margin under the grid
    with pytest.raises(ApplicationError, match="Not enough free collateral"):
        position_market_fill(
            account=account,
            instrument=put.symbol,
            side="sell",
            quantity=Decimal(10),
            idempotency_key="naked-puts",
        )
    assert not Position.objects.filter(margin_account=account).exclude(quantity=0).exists()


def test_at_expiry_each_option_is_paid_its_intrinsic_value_on_the_index_twap(options_market):
    call, put = series("call", 94000), series("put", 94000)
    long_call = funded_account(usdt="20000", fills=[(call.symbol, "buy", "0.4")])
    short_put = funded_account(usdt="40000", fills=[(put.symbol, "sell", "1")])
    wallets = {a.pk: wallet(a) for a in (long_call, short_put)}
    expiry = call.expiry
    # the notice a day of market time before (24 real minutes): the 12-hour term is inside it
    assert expiry_run(now=options_market).notified == 2
    assert Notification.objects.filter(kind="expiry", text__contains="intrinsic").count() == 2
    # the BTC index over the last 30 market minutes (30 real seconds): TWAP 96,000
    btc = call.underlying
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(asset=btc, at=expiry + timedelta(seconds=s), price=price)
        for s, price in ((-40, 95000), (-15, 97000), (5, 1))
    )
    run = expiry_run(now=expiry + timedelta(seconds=1))
    # (15 × 95,000 + 15 × 97,000) / 30 = 96,000: the call pays 2,000, the put nothing
    assert set(run.settled) >= {call.symbol, put.symbol}
    assert run.closed == 2
    call.refresh_from_db()
    assert call.settlement_price == Decimal(96000) and not call.is_active
    assert wallet(long_call) - wallets[long_call.pk] == Decimal("0.4") * 2000
    assert wallet(short_put) == wallets[short_put.pk]
    settled = Fill.objects.filter(reason=Fill.Reason.SETTLEMENT)
    assert {(f.position.instrument.symbol, f.price) for f in settled} == {
        (call.symbol, Decimal(2000)),
        (put.symbol, Decimal(0)),
    }
    (entry,) = ledger_history(account=long_call, filters={"kind": JournalKind.SETTLEMENT})
    assert entry.amount == Decimal(800)
    assert not Position.objects.filter(instrument__in=[call, put]).exclude(quantity=0).exists()
    assert ledger_differences().clean
    # the term is listed again, and the expired series no longer trades
    assert any(s.startswith("BTC-") for s in run.listed)
    with pytest.raises(ApplicationError, match="expired"):
        position_market_fill(
            account=long_call,
            instrument=call.symbol,
            side="buy",
            quantity=Decimal(1),
            idempotency_key="after-expiry",
        )


def test_the_tick_margins_an_option_account_by_the_grid_as_the_reference_does(
    options_market, monkeypatch
):
    put, call = series("put", 96000, 2), series("call", 100000, 1)
    account = funded_account(
        usdt="40000",
        fills=[(put.symbol, "sell", "1"), (call.symbol, "buy", "2"), ("BTCUSDT", "buy", "0.1")],
    )
    linear_only = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.2")])
    tick_at = options_market + timedelta(seconds=1)
    revaluation_tick_run(now=tick_at)
    snapshot = latest_snapshot(account)
    # the reference at the tick's time (the same marks, days to expiry from the tick)
    monkeypatch.setattr(timezone, "now", lambda: tick_at)
    requirement = account_state_load(account).requirement()
    assert requirement.binding == "grid"
    assert float(snapshot.maintenance_margin) == pytest.approx(
        float(requirement.maintenance), rel=1e-6
    )
    assert float(snapshot.initial_margin) == pytest.approx(float(requirement.initial), rel=1e-6)
    assert float(snapshot.margin_balance) == pytest.approx(
        float(requirement.margin_balance), rel=1e-6
    )
    # an account without options keeps its tiered figures
    assert latest_snapshot(linear_only).maintenance_margin == pytest.approx(
        Decimal("0.2") * 95000 * Decimal("0.004")
    )

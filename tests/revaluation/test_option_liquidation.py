"""Liquidation of an account whose requirement comes from options (PostgreSQL): a crash drives
a short-put book past its portfolio-grid maintenance margin; the liquidation buys the puts
back at their mark through the option fill path, its fee to the insurance fund, until the
account is back under the line, as Deribit liquidates a portfolio-margin account
(support.deribit.com, "Liquidations", article 25944769313309: partial, incremental, stopping
"as soon as the required maintenance margin is lower than the margin balance of the account").
A bankrupt one has every put bought back and its deficit covered by the fund, the rest written
off."""

from decimal import ROUND_DOWN, Decimal

import pytest

from margin.models import (
    AccountEvent,
    AccountState,
    Fill,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarkPrice,
    Position,
)
from margin.selectors.accounts import account_state_load
from margin.selectors.ledger import ledger_differences
from margin.services.liquidation import insurance_fund_deposit, liquidation_run
from margin.services.revaluation import revaluation_tick_run
from tests.options_support import series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def put(strike: int) -> Instrument:
    """The BTC put of that strike in the 48-hour expiry."""
    return series("put", strike, 1)


def balance(kind: str, account=None) -> Decimal:
    return LedgerAccount.objects.get(
        margin_account=account, kind=kind, asset__symbol="USDT"
    ).balance


def crash(later, btc: int):
    """BTC falls from 95,000 to `btc`, every venue together; the tick revalues the book."""
    market_prices(at=later(2), BTC=btc, USDT=1)
    return revaluation_tick_run(now=later(3))


def test_a_short_put_book_past_its_line_buys_puts_back_at_the_mark_until_under_it(
    options_market, later
):
    series = [put(94000), put(90000)]
    account = funded_account(
        usdt="75000",
        fills=[(series[0].symbol, "sell", "1"), (series[1].symbol, "sell", "4")],
    )
    held = {
        p.instrument.symbol: p.quantity for p in Position.objects.filter(margin_account=account)
    }
    run = crash(later, 80000)  # −15.8 %
    account.refresh_from_db()
    assert account.state == AccountState.LIQUIDATION
    assert account_state_load(account).requirement().binding == "grid"
    ((account_id, tick_id),) = run.to_liquidate
    params = run.start.tick.parameter_version
    wallet_before = balance(LedgerAccountKind.WALLET, account)
    # when
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: puts bought back (part of the book, not all of it) at their marks
    fills = list(Fill.objects.filter(reason=Fill.Reason.LIQUIDATION).select_related("position"))
    assert fills and all(f.quantity > 0 for f in fills)
    for fill in fills:
        assert fill.price == MarkPrice.objects.get(instrument=fill.position.instrument).mark_price
        assert fill.fee == (fill.quantity * fill.price * params.liquidation_fee_rate).quantize(
            Decimal("1e-8"), rounding=ROUND_DOWN
        )
    left = {
        p.instrument.symbol: p.quantity for p in Position.objects.filter(margin_account=account)
    }
    assert any(left[s] < 0 for s in held)  # not the whole book
    # the premium at the mark and the fee leave the wallet, the fee reaches the fund
    paid = sum((f.quantity * f.price + f.fee for f in fills), Decimal(0))
    assert balance(LedgerAccountKind.WALLET, account) == wallet_before - paid
    assert liquidation.status == Liquidation.Status.DONE
    assert liquidation.fee == sum((f.fee for f in fills), Decimal(0)) > 0
    assert balance(LedgerAccountKind.INSURANCE) == liquidation.fee
    # back under the line after hysteresis, and the next tick no longer finds it due
    line = params.liquidation_ratio - params.hysteresis
    assert liquidation.margin_ratio_after <= line
    revaluation_tick_run(now=later(4))
    account.refresh_from_db()
    assert account.state != AccountState.LIQUIDATION
    assert ledger_differences().clean


def test_a_bankrupt_short_put_book_is_bought_back_whole_and_its_deficit_covered(
    options_market, later
):
    insurance_fund_deposit(amount=Decimal("1000"), memo="seed the fund")
    series = put(94000)
    account = funded_account(usdt="20000", fills=[(series.symbol, "sell", "1")])
    run = crash(later, 60000)  # −36.8 %
    ((account_id, tick_id),) = run.to_liquidate
    params = run.start.tick.parameter_version
    # when
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: every put bought back at the mark, no fee (no margin left to take it from)
    (fill,) = Fill.objects.filter(reason=Fill.Reason.LIQUIDATION)
    assert fill.quantity == 1 and fill.fee == 0
    assert fill.price == MarkPrice.objects.get(instrument=series).mark_price
    assert not Position.objects.filter(margin_account=account).exclude(quantity=0).exists()
    # the fund paid all it had, never going negative; the rest was written off (at 60,000 the
    # put is worth its intrinsic 34,000: the wallet held 20,000 and the premium less the fee)
    assert liquidation.insurance_cover == Decimal("1000")
    (write_off,) = AccountEvent.objects.filter(account=account, kind=AccountEvent.Kind.WRITE_OFF)
    assert Decimal(write_off.detail["amount"]) > 0
    assert balance(LedgerAccountKind.INSURANCE) == 0
    assert balance(LedgerAccountKind.WALLET, account) == 0
    assert liquidation.status == Liquidation.Status.DONE
    assert params.liquidation_fee_rate > 0
    assert ledger_differences().clean

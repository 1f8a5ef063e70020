"""The order a liquidation trades an account holding options in, as Deribit publishes it
(PostgreSQL; the engine's plan is tests/engine/test_option_liquidation.py):
- standard margin (deribit.com/docs/auto-liquidation/): "first liquidate future positions and
  after that liquidate any option positions ... striving for a 'delta neutral' position";
- portfolio margin (support.deribit.com/hc/en-us/articles/25944825289245, "1 August 2023"):
  the instrument "contributing the most to the overall margin requirements" first.
The fills are the plan the desk's account review shows beforehand; the ledger stays balanced
and every fee reaches the insurance fund."""

from decimal import ROUND_DOWN, Decimal

import pytest

from margin.engine.book_liquidation import FUTURES_FIRST, LARGEST_CONTRIBUTION_FIRST
from margin.models import (
    AccountEvent,
    Fill,
    LedgerAccount,
    LedgerAccountKind,
    MarkPrice,
    Position,
)
from margin.selectors.desk import account_review
from margin.selectors.ledger import ledger_differences
from margin.services.liquidation import liquidation_run
from margin.services.revaluation import revaluation_tick_run
from tests.options_support import series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db
D = Decimal


def long_book(usdt: str, scheme: str = "standard"):
    """Long 0.5 BTCUSDT at 95,000 and short one 94,000 put of the 48-hour term: both long
    BTC, under `scheme`."""
    put = series("put", 94000, 1)
    account = funded_account(
        usdt=usdt, fills=[("BTCUSDT", "buy", "0.5"), (put.symbol, "sell", "1")]
    )
    account.margin_scheme = scheme
    account.save(update_fields=["margin_scheme"])
    return account


def crash(later, btc: int):
    """BTC falls from 95,000 to `btc`, every venue together; the tick revalues the book."""
    market_prices(at=later(2), BTC=btc, USDT=1)
    return revaluation_tick_run(now=later(3))


def fund_balance() -> Decimal:
    return LedgerAccount.objects.get(
        margin_account=None, kind=LedgerAccountKind.INSURANCE, asset__symbol="USDT"
    ).balance


def liquidate(account, later):
    """BTC falls from 95,000 to 80,000; the desk's preview of the plan, then the liquidation."""
    run = crash(later, 80000)
    ((account_id, tick_id),) = run.to_liquidate
    plan = account_review(account=account).plan
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    fills = list(
        Fill.objects.filter(reason=Fill.Reason.LIQUIDATION)
        .select_related("position__instrument")
        .order_by("pk")
    )
    return plan, liquidation, fills, run.start.tick.parameter_version


def booked_as_planned(plan, fills) -> None:
    """The fills are the preview's steps, in its order and quantities (an option's to a few
    lots: its days to expiry, and so its value, run on between the preview and the fill)."""
    assert [str(f.position_id) for f in fills] == [s.position_id for s in plan.steps]
    for fill, step in zip(fills, plan.steps, strict=True):
        assert abs(abs(fill.quantity) - step.quantity) <= Decimal("1e-6")


def test_standard_sells_the_future_first_then_buys_the_put_back(options_market, later):
    """Before/after (BTC 80,000; the put's mark 14,000.03; line 95 %, the ratio the grid's):

    | step                          | BTCUSDT | short puts | ratio after |
    | before                        | 0.5     | 1          | 1.73        |
    | future: sell 0.5 at 79,840    | 0       | 1          | 1.22        |
    | option: buy 0.22 at the mark  | 0       | 0.78       | 0.95        |
    """
    account = long_book("26000")
    plan, liquidation, fills, params = liquidate(account, later)
    assert plan.order == FUTURES_FIRST
    assert [s.kind for s in plan.steps] == ["future", "option"]
    assert D("1.70") < plan.margin_ratio_before < D("1.75")
    assert D("1.20") < plan.steps[0].margin_ratio_after < D("1.25")
    assert D("0.21") < plan.steps[1].quantity < D("0.23")
    booked_as_planned(plan, fills)
    future, put = fills
    assert future.position.instrument.symbol == "BTCUSDT" and future.quantity == Decimal("-0.5")
    mark = Decimal(80000)
    assert future.price == mark * (1 - params.liquidation_slippage)
    assert put.position.instrument.kind == "option"
    assert put.price == MarkPrice.objects.get(instrument=put.position.instrument).mark_price
    assert 0 < put.quantity < 1  # bought back
    for fill in fills:
        assert fill.fee == (abs(fill.quantity) * fill.price * params.liquidation_fee_rate).quantize(
            Decimal("1e-8"), rounding=ROUND_DOWN
        )
    assert liquidation.fee == future.fee + put.fee == fund_balance()
    events = AccountEvent.objects.filter(account=account, kind=AccountEvent.Kind.LIQUIDATION)
    assert [e.detail.get("option", False) for e in events.order_by("pk")] == [False, True]
    assert liquidation.margin_ratio_after <= params.liquidation_ratio - params.hysteresis
    assert ledger_differences().clean


def test_portfolio_buys_back_the_largest_contributor_first(options_market, later):
    """The same book under the portfolio scheme: the put (short, in the money after the crash:
    delta ≈ +0.8) adds more to the grid's loss than the 0.5 perpetual, so it goes first, and
    its partial buy-back alone brings the account under the line; the perpetual stays."""
    account = long_book("26000", scheme="portfolio")
    plan, liquidation, fills, params = liquidate(account, later)
    assert plan.order == LARGEST_CONTRIBUTION_FIRST
    booked_as_planned(plan, fills)
    (put,) = fills
    assert put.position.instrument.kind == "option" and 0 < put.quantity < 1
    assert liquidation.fee == put.fee == fund_balance() > 0
    assert Position.objects.get(
        margin_account=account, instrument__symbol="BTCUSDT"
    ).quantity == Decimal("0.5")
    assert liquidation.margin_ratio_after <= params.liquidation_ratio - params.hysteresis
    assert ledger_differences().clean

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
from django.urls import reverse

from accounts.roles import RISK_OFFICER
from margin.engine.book_liquidation import FUTURES_FIRST, HEDGE, LARGEST_CONTRIBUTION_FIRST
from margin.models import (
    AccountEvent,
    Asset,
    AuditEntry,
    Fill,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarkPrice,
    ParameterVersion,
    Position,
    SimulatedAsset,
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


def stale_surface_crash(reference, later):
    """Two short BTC puts in the money (96,000 on 95,000, the 12-hour term) on ETH collateral,
    under the portfolio scheme, the BTC surface stepped at later(1); then ETH falls 65 % with
    the venues quoting on, after the surface went stale: the account, the put, the tick."""
    ParameterVersion.objects.filter(pk=reference.pk).update(stale_materiality_share=D("0.5"))
    SimulatedAsset.objects.create(
        asset=Asset.objects.get(symbol="BTC"), price=95000, regime="calm", stepped_at=later(1)
    )
    put = series("put", 96000, 0)
    account = funded_account(usdt="100", ETH="11", fills=[(put.symbol, "sell", "2")])
    account.margin_scheme = "portfolio"
    account.save(update_fields=["margin_scheme"])
    stale_at = later(reference.price_guard_max_age_s + 5)
    market_prices(at=stale_at, BTC=95000, ETH=1200, USDT=1)
    return account, put, revaluation_tick_run(now=stale_at)


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


def test_portfolio_hedges_with_the_perpetual_when_its_options_cannot_trade(
    options_market, later, reference
):
    """Deribit's last resort for a portfolio-margin account ("If attempts on the relevant
        instruments do not execute, then Deribit will attempt to reduce the risk by delta hedging
        via the Perpetual"), booked: the BTC options' vol surface is stale (their marks held,
        uncertain: they do not trade), too small a part of the account to hold its liquidation back
        (the desk's materiality share at 50 %), and an ETH crash has taken its collateral under the
        grid's maintenance margin. The plan sells the perpetual against the puts' net delta (the
    engine's plan: tests/engine/test_option_liquidation.py)."""
    account, put, run = stale_surface_crash(reference, later)
    ((account_id, tick_id),) = run.to_liquidate
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: the puts held uncertain, so frozen; the one trade a sale of the perpetual against
    # their net delta (+1.38), of the least lots that bring the account to its line (0.44 BTC:
    # ratio 1.19 → 0.9499), at the slipped mark
    assert MarkPrice.objects.get(instrument=put).uncertain_reason.startswith(
        "BTC vol surface stale"
    )
    (fill,) = Fill.objects.filter(reason=Fill.Reason.LIQUIDATION).select_related(
        "position__instrument"
    )
    params = run.start.tick.parameter_version
    mark = MarkPrice.objects.get(instrument__symbol="BTCUSDT").mark_price
    assert fill.position.instrument.symbol == "BTCUSDT" and -2 < fill.quantity < 0
    assert fill.price == mark * (1 - params.liquidation_slippage)
    assert fill.fee == (-fill.quantity * fill.price * params.liquidation_fee_rate).quantize(
        D("1e-8"), rounding=ROUND_DOWN
    )
    # a new short leg beside the puts, which did not trade
    hedge = Position.objects.get(margin_account=account, instrument__symbol="BTCUSDT")
    assert hedge.quantity == fill.quantity
    assert Position.objects.get(margin_account=account, instrument=put).quantity == -2
    # the fee reached the fund, the ledger is balanced, the account back under its line
    assert liquidation.status == Liquidation.Status.DONE
    assert liquidation.fee == fill.fee == fund_balance() > 0
    assert ledger_differences().clean
    assert liquidation.margin_ratio_after <= params.liquidation_ratio - params.hysteresis
    # the trail: the step in the liquidation, the event, the audit entry
    (step,) = [s for s in liquidation.steps if s["action"] == "hedge"]
    assert step["symbol"] == "BTCUSDT" and D(step["quantity"]) == -fill.quantity
    (event,) = AccountEvent.objects.filter(account=account, kind=AccountEvent.Kind.LIQUIDATION)
    assert event.detail["hedge"] == "sell" and event.detail["symbol"] == "BTCUSDT"
    (audited,) = AuditEntry.objects.filter(action="account.liquidation", margin_account=account)
    assert audited.after["liquidation"] == liquidation.pk and audited.after["steps"] == len(
        liquidation.steps
    )


def test_the_desk_previews_the_hedge_when_the_options_are_frozen(
    options_market, later, reference, client, make_user
):
    """The desk's review plans on the positions the liquidation freezes: with the puts on a
    stale surface, it shows the perpetual sold against them (the one step the liquidation
    books), not the puts bought back, and says they are frozen and why."""
    account, put, run = stale_surface_crash(reference, later)
    review = account_review(account=account)
    client.force_login(make_user(RISK_OFFICER))
    page = client.get(reverse("desk:account", args=[account.pk])).content.decode()
    ((account_id, tick_id),) = run.to_liquidate
    liquidation_run(account_id=account_id, tick_id=tick_id)
    (fill,) = Fill.objects.filter(reason=Fill.Reason.LIQUIDATION)
    ((instrument, step),) = review.plan_steps
    assert (instrument, step.kind) == ("BTCUSDT", HEDGE)
    # to a few lots: the puts' days to expiry, so their delta, run on between the two
    assert abs(step.quantity + fill.quantity) <= D("0.001")
    ((frozen, why),) = review.frozen
    assert frozen == put.symbol and "BTC vol surface stale" in why
    assert 'id="liquidation-frozen"' in page and put.symbol in page

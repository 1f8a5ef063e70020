"""The stress margin in the tick: volatility from hourly returns with published floors (never
zero), and the portfolio margin scheme feeding ratio, state, IM and withdrawable."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from margin.engine.reference import quote_account
from margin.engine.scheme import portfolio_liquidation_price
from margin.engine.stress import account_stress
from margin.errors import ApplicationError
from margin.models import (
    AccountState,
    Asset,
    AssetPriceHistory,
    Liquidation,
    MarginAccount,
    MarginScheme,
    MarginSnapshot,
    ParameterVersion,
    Position,
    VolatilityFloor,
)
from margin.selectors.accounts import account_state_load, engine_accounts
from margin.selectors.ledger import ledger_differences
from margin.selectors.market import latest_snapshot
from margin.selectors.volatility import (
    PERIODS_PER_DAY,
    period_end,
    return_period_s,
    tick_stress_model,
)
from margin.services.collateral import collateral_max_withdrawal, collateral_withdraw
from margin.services.liquidation import liquidation_run
from margin.services.revaluation import revaluation_tick_run
from tests.options_support import series
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def _floor(symbol: str) -> Decimal:
    version = ParameterVersion.objects.get(number=1)
    return VolatilityFloor.objects.get(version=version, asset__symbol=symbol).daily_vol


def test_without_history_the_stress_margin_is_the_floor_never_zero(market, later):
    # given: a BTC long and USDT collateral, and no price history at all
    account = funded_account(usdt="5000", fills=[("BTCUSDT", "buy", "0.2")])
    # when
    run = revaluation_tick_run(now=later(1))
    # then: each asset at its published floor, correlation unknown so the terms add up
    snapshot = latest_snapshot(account)
    assert run.start.tick.volatility["vol"].count(None) == len(run.start.tick.volatility["vol"])
    btc_exposure = Decimal("0.2") * 95000
    expected = 3 * (_floor("BTC") * btc_exposure + _floor("USDT") * snapshot.collateral_value)
    assert snapshot.stress_margin == pytest.approx(expected, rel=Decimal("1e-9"))


def test_a_new_asset_the_estimate_never_saw_takes_the_highest_floor(market, later):
    # given: an asset listed after version 1 was published, with no floor of its own
    Asset.objects.create(symbol="NEWCOIN", name="New coin")
    from margin.selectors.parameters import engine_terms

    terms = engine_terms(ParameterVersion.objects.get(number=1))
    # then
    assert terms.volatility_floor("NEWCOIN") == max(terms.volatility_floors.values()) > 0


def _synthetic_history(*, end, vol_hourly: float, rho: float, hours: int, seed: int):
    """Hourly closes of BTC and ETH drawn with a known σ per hour and correlation."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]]) * vol_hourly**2
    returns = rng.multivariate_normal(np.zeros(2), cov, hours)
    paths = np.array([95000.0, 3400.0]) * np.exp(np.cumsum(returns, axis=0))
    period = timedelta(seconds=return_period_s())
    assets = {a.symbol: a for a in Asset.objects.filter(symbol__in=["BTC", "ETH"])}
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(
            asset=assets[symbol],
            # A few prints inside each hour: the last one is the close.
            at=end - (hours - h) * period + offset * period / 4,
            price=Decimal(str(round(price * (1 + 0.001 * offset), 6))),
        )
        for h, row in enumerate(paths, start=1)
        for symbol, price in zip(("BTC", "ETH"), row, strict=True)
        for offset in (-3, -2, -1, 0)
    )


def test_a_synthetic_history_of_known_volatility_is_recovered(market, later, settings):
    # given: 120 hours of BTC and ETH at 1 % an hour (4.9 % a day), correlation 0.7, each hour
    # with intra-hour noise that the hourly closes must ignore
    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60
    tick_at = later(1)
    _synthetic_history(end=period_end(tick_at), vol_hourly=0.01, rho=0.7, hours=120, seed=11)
    # when
    run = revaluation_tick_run(now=tick_at)
    # then
    frozen = run.start.tick.volatility
    btc, eth = frozen["assets"].index("BTC"), frozen["assets"].index("ETH")
    daily = 0.01 * np.sqrt(PERIODS_PER_DAY)
    assert frozen["vol"][btc] == pytest.approx(daily, rel=0.25)
    assert frozen["vol"][eth] == pytest.approx(daily, rel=0.25)
    correlation = frozen["cov"][btc][eth] / (frozen["vol"][btc] * frozen["vol"][eth])
    assert correlation == pytest.approx(0.7, abs=0.15)
    assert frozen["half_life_hours"] == pytest.approx(11.2, abs=0.05)
    # an asset without history has no estimate (its floor stands in)
    assert frozen["vol"][frozen["assets"].index("SOL")] is None


def test_the_estimate_is_read_once_per_hour(market, later, settings):
    # given: two ticks inside one return period (an hour of market time: 60 s at speed 60)
    settings.DEMO_MARKET_ENABLED, settings.DEMO_MARKET_SPEED = True, 60
    start = period_end(later(61)) + timedelta(seconds=1)
    first = revaluation_tick_run(now=start).start.tick
    # when
    with CaptureQueriesContext(connection) as queries:
        second = revaluation_tick_run(now=start + timedelta(seconds=5)).start.tick
    # then: the second tick froze the first one's estimate without reading the history
    assert second.volatility == first.volatility
    history = AssetPriceHistory._meta.db_table
    assert not [q for q in queries.captured_queries if history in q["sql"]]


def _portfolio(account: MarginAccount) -> MarginAccount:
    MarginAccount.objects.filter(pk=account.pk).update(margin_scheme=MarginScheme.PORTFOLIO)
    account.refresh_from_db()
    return account


def test_under_the_portfolio_scheme_the_stress_loss_drives_ratio_state_and_withdrawable(
    market, later
):
    # given: the same book twice, one account on each scheme: 0.2 BTC long bought at 95,000 on
    # 2,000 USDT, then BTC at 91,000 (balance about 1,190, tiered MM 72.8; the 3σ stress loss
    # at the floors is about 1,098)
    standard = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    portfolio = _portfolio(funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")]))
    market_prices(at=later(0.5), BTC=91000)
    # when
    revaluation_tick_run(now=later(1))
    # then: the standard account is healthy on its tiered MM
    standard_snapshot = latest_snapshot(standard)
    assert standard_snapshot.maintenance_margin == Decimal("72.8")
    assert standard_snapshot.state == AccountState.HEALTHY
    # the portfolio account is charged its stress loss, which puts it in margin call
    snapshot = latest_snapshot(portfolio)
    assert snapshot.stress_margin == standard_snapshot.stress_margin > 1000
    assert snapshot.maintenance_margin == pytest.approx(snapshot.stress_margin)
    ratio = snapshot.stress_margin / snapshot.margin_balance
    assert snapshot.margin_ratio == pytest.approx(ratio, rel=Decimal("1e-9"))
    assert Decimal("0.8") <= ratio < 1
    assert snapshot.state == AccountState.MARGIN_CALL
    portfolio.refresh_from_db()
    assert portfolio.state == AccountState.MARGIN_CALL
    # IM: the larger of the tiered IM and the requirement over the margin-call ratio
    assert snapshot.initial_margin == pytest.approx(
        max(standard_snapshot.initial_margin, snapshot.stress_margin / Decimal("0.8"))
    )
    free = snapshot.collateral_value + min(snapshot.unrealized_pnl, 0) - snapshot.initial_margin
    assert snapshot.withdrawable == pytest.approx(max(free, Decimal(0)))


def test_a_portfolio_account_past_its_stress_requirement_is_due_for_liquidation(market, later):
    # given: 0.2 BTC long bought at 95,000 on 2,000 USDT under the portfolio scheme, then BTC
    # at 90,000: balance about 990, stress about 1,086
    account = _portfolio(funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")]))
    hedged = _portfolio(funded_account(usdt="1100"))
    market_prices(at=later(0.5), BTC=90000)
    # when
    run = revaluation_tick_run(now=later(1))
    # then
    assert latest_snapshot(account).state == AccountState.LIQUIDATION
    assert (account.pk, run.start.tick.pk) in run.to_liquidate
    assert latest_snapshot(hedged).state == AccountState.HEALTHY


def test_a_portfolio_account_is_liquidated_on_its_stress_requirement(market, later):
    # given: 0.2 BTC long bought at 95,000 on 2,000 USDT under the portfolio scheme, BTC at
    # 90,000: tiered ratio about 0.07 (the standard scheme would not touch it), stress ratio
    # about 1.1
    account = _portfolio(funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")]))
    market_prices(at=later(0.5), BTC=90000)
    run = revaluation_tick_run(now=later(1))
    ((account_id, tick_id),) = run.to_liquidate
    # when
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: reduced on the requirement, and the account's requirement ratio is back under the
    # liquidation line (near the target: the plan aims with the tiered MM scaled)
    assert liquidation.status == Liquidation.Status.DONE
    assert liquidation.margin_ratio_before >= 1
    position = Position.objects.get(margin_account=account)
    assert 0 < position.quantity < Decimal("0.2")
    requirement = account_state_load(account).requirement()
    assert requirement.binding == "stress"
    assert requirement.margin_ratio < Decimal("0.8")
    assert liquidation.margin_ratio_after == pytest.approx(
        requirement.margin_ratio, abs=Decimal("1e-9")
    )
    assert ledger_differences().clean


def test_under_the_portfolio_scheme_a_withdrawal_keeps_the_stress_requirement_covered(market):
    # given: 100 SOL long at 230 (23,000; IM 2,300 at 10x) on 5,000 USDT, one account on each
    # scheme. SOL's 3σ at its floor (3.5 % a day) is about 2,415: over the margin-call ratio
    # 0.8 that is an initial requirement of about 3,040, above the tiered IM.
    standard = funded_account(usdt="5000", fills=[("SOLUSDT", "buy", "100")])
    portfolio = _portfolio(funded_account(usdt="5000", fills=[("SOLUSDT", "buy", "100")]))
    requirement = account_state_load(portfolio).requirement()
    assert requirement.binding == "stress"
    assert requirement.initial == pytest.approx(requirement.maintenance / Decimal("0.8"))
    # when / then: 2,300 USDT leaves the standard account, not the portfolio one
    collateral_withdraw(
        account=standard, asset="USDT", amount=Decimal(2300), idempotency_key="w-standard"
    )
    with pytest.raises(ApplicationError, match="at most"):
        collateral_withdraw(
            account=portfolio, asset="USDT", amount=Decimal(2300), idempotency_key="w-portfolio"
        )
    most = collateral_max_withdrawal(account=portfolio, asset="USDT")
    assert most == pytest.approx(requirement.withdrawable, abs=Decimal("0.01"))
    collateral_withdraw(account=portfolio, asset="USDT", amount=most, idempotency_key="w-most")


def test_the_tick_stores_a_portfolio_accounts_liquidation_price_under_its_scheme(market, later):
    # given: the same 0.2 BTC long on 2,000 USDT on each scheme; at the floors the 3σ stress
    # loss (about 1,100 at 95,000) is far above the tiered MM (about 76)
    standard = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    portfolio = _portfolio(funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")]))
    # when
    tick = revaluation_tick_run(now=later(1)).start.tick
    # then: the standard account's snapshot keeps the tiered price; the portfolio account's is
    # where its balance meets the stress loss, as the Decimal reference (its trader page and
    # explain) finds it on the tick's own model
    (tiered,) = (
        row["liquidation_price"]
        for row in MarginSnapshot.positions_of(latest_snapshot(standard).positions)
    )
    (stored,) = (
        row["liquidation_price"]
        for row in MarginSnapshot.positions_of(latest_snapshot(portfolio).positions)
    )
    account_input = engine_accounts([portfolio.pk])[portfolio.pk]
    names = tuple(Asset.objects.order_by("pk").values_list("symbol", flat=True))
    expected = portfolio_liquidation_price(
        account_input,
        tick_stress_model(tick, names),
        account_input.positions[0],
        quote_account(account_input).positions[0].liquidation_price,
    ).price
    assert stored > tiered + 5000
    assert stored == pytest.approx(float(expected), rel=1e-8)


def test_the_tick_stresses_options_in_full_with_the_vol_shock(options_market, later):
    """A short put beside USDT alone: before, the linear stress saw no exposure (the pool's
    USDT does not move) and charged 0; now the tick revalues the put under each named move
    with its vol shock, as the Decimal reference does (the trader's page and the portfolio
    scheme read the same)."""
    put = series("put", 94000, 1)
    account = funded_account(usdt="30000", fills=[(put.symbol, "sell", "1")])
    run = revaluation_tick_run(now=later(1))
    snapshot = latest_snapshot(account)
    engine_input = engine_accounts([account.pk])[account.pk]
    names = tuple(Asset.objects.order_by("pk").values_list("symbol", flat=True))
    reference = account_stress(engine_input, tick_stress_model(run.start.tick, names))
    assert reference.worst_loss > 0 and reference.worst_scenario is not None
    # (the page reads the days to expiry a moment after the tick did: the put's value moves)
    assert float(snapshot.stress_margin) == pytest.approx(float(reference.worst_loss), rel=1e-3)

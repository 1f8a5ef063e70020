from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db.models import F
from django.utils import timezone

from accounts.roles import RISK_MANAGER, RISK_OFFICER
from margin.errors import ApplicationError
from margin.models import (
    AccountState,
    AssetPrice,
    Entry,
    Fill,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    Position,
    Proposal,
    SimulatedAsset,
)
from margin.selectors.figures import figures_now
from margin.selectors.ledger import ledger_differences
from margin.services.liquidation import insurance_fund_deposit, liquidation_run
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.prices import demo_market_step, prices_refresh
from margin.services.proposals import forced_reduction_propose, proposal_approve
from margin.services.revaluation import revaluation_tick_run
from tests.revaluation.factories import funded_account, market_prices

pytestmark = pytest.mark.django_db


def insurance_fund() -> LedgerAccount:
    return LedgerAccount.objects.get(kind=LedgerAccountKind.INSURANCE, asset__symbol="USDT")


def crash_and_tick(later, btc, seconds=2):
    market_prices(at=later(seconds), BTC=btc, USDT=1)
    return revaluation_tick_run(now=later(seconds + 1))


def test_partial_liquidation_follows_the_plan_pays_the_fund_and_runs_once(market, later):
    # given: 500 SOL long at 10x (notional 115,000, bracket mmr 2.5%); at 208 the pool holds
    # 942.5 against a maintenance margin of 1,050
    account = funded_account(usdt="12000", fills=[("SOLUSDT", "buy", "500")])
    market_prices(at=later(2), SOL=208, USDT=1)
    run = revaluation_tick_run(now=later(3))
    account.refresh_from_db()
    assert account.state == AccountState.LIQUIDATION
    ((account_id, tick_id),) = run.to_liquidate
    # when
    liquidation = liquidation_run(account_id=account_id, tick_id=tick_id)
    again = liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: reduced (not closed) to the target ratio, at the mark less the slippage
    params = run.start.tick.parameter_version
    position = Position.objects.get(margin_account=account)
    assert Decimal(150) < position.quantity < Decimal(250)
    fill = Fill.objects.get(position=position, reason=Fill.Reason.LIQUIDATION)
    assert fill.price == Decimal(208) * (1 - params.liquidation_slippage)
    assert liquidation.status == Liquidation.Status.DONE
    assert liquidation.margin_ratio_after <= params.liquidation_target_ratio
    assert figures_now(account).quote.margin_ratio <= params.liquidation_target_ratio
    expected_fee = -fill.quantity * fill.price * params.liquidation_fee_rate
    assert liquidation.fee == fill.fee == pytest.approx(expected_fee, abs=Decimal("1e-8"))
    assert insurance_fund().balance == liquidation.fee > 0
    # the second run found it done and booked nothing
    assert again.pk == liquidation.pk
    assert Fill.objects.filter(reason=Fill.Reason.LIQUIDATION).count() == 1
    assert Liquidation.objects.count() == 1
    assert ledger_differences().clean


def test_a_bankrupt_account_is_closed_and_its_deficit_covered_by_the_insurance_fund(market, later):
    # given: a funded insurance fund; BTC at 84,000 leaves the pool at 16,800 − 17,009.5 < 0
    insurance_fund_deposit(amount=Decimal("10000"), memo="seed the fund")
    account = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    run = crash_and_tick(later, 84000)
    account.refresh_from_db()
    assert account.state == AccountState.BANKRUPT
    # when
    liquidation = liquidation_run(account_id=account.pk, tick_id=run.start.tick.pk)
    # then: closed at the slipped mark; the fund paid the deficit (−209.5 − 33.6 slippage)
    assert Position.objects.get(margin_account=account).quantity == 0
    assert liquidation.insurance_cover == pytest.approx(Decimal("243.1"), abs=Decimal("1e-6"))
    assert figures_now(account).quote.margin_balance == pytest.approx(
        Decimal(0), abs=Decimal("1e-6")
    )
    assert insurance_fund().balance == Decimal("10000") - liquidation.insurance_cover
    assert ledger_differences().clean


def test_when_the_fund_cannot_cover_opposing_profitable_positions_are_deleveraged(market, later):
    # given: an empty fund; two shorts on the other side, the higher PnL% × leverage first
    bankrupt = funded_account(usdt="2000", fills=[("BTCUSDT", "buy", "0.2")])
    cautious = funded_account(usdt="20000", fills=[("BTCUSDT", "sell", "0.1")])
    bold = funded_account(usdt="3000", fills=[("BTCUSDT", "sell", "0.15")])
    run = crash_and_tick(later, 84000)
    quote = figures_now(bankrupt).quote
    (row,) = quote.positions
    # when
    liquidation_run(account_id=bankrupt.pk, tick_id=run.start.tick.pk)
    # then: the bold short gave 0.15 and the cautious one 0.05, at the bankruptcy price
    assert Position.objects.get(margin_account=bankrupt).quantity == 0
    assert Position.objects.get(margin_account=bold).quantity == 0
    assert Position.objects.get(margin_account=cautious).quantity == Decimal("-0.05")
    adl_fills = Fill.objects.filter(reason=Fill.Reason.ADL)
    assert {f.price for f in adl_fills} == {row.bankruptcy_price}
    assert figures_now(bankrupt).quote.margin_balance == pytest.approx(
        Decimal(0), abs=Decimal("1e-6")
    )
    assert insurance_fund().balance == 0
    assert ledger_differences().clean


def test_a_cascade_in_the_demo_market_keeps_the_ledger_balanced_and_the_fund_explained(
    market, later
):
    # given: a small fund, longs with thin margins, shorts on the other side
    insurance_fund_deposit(amount=Decimal("300"), memo="seed the fund")
    longs = [
        funded_account(usdt=str(usdt), fills=[("BTCUSDT", "buy", "0.2")])
        for usdt in (1950, 2000, 2050, 2100, 2200, 2400)
    ]
    shorts = [funded_account(usdt="5000", fills=[("BTCUSDT", "sell", "0.3")]) for _ in range(2)]
    rng = np.random.default_rng(11)
    # when: the demo market crashes BTC by 4% a step, each tick's liquidations run
    for step in range(1, 6):
        at = later(10 * step)
        SimulatedAsset.objects.filter(asset__symbol="BTC").update(
            price=F("price") * Decimal("0.96")
        )
        demo_market_step(now=at, rng=rng)
        prices_refresh(now=at)
        run = revaluation_tick_run(now=at)
        for account_id, tick_id in run.to_liquidate:
            liquidation_run(account_id=account_id, tick_id=tick_id)
    # then: every long was liquidated, the shorts were not
    done = Liquidation.objects.filter(status=Liquidation.Status.DONE)
    assert {liq.account_id for liq in done} == {a.pk for a in longs}
    assert not Liquidation.objects.filter(account__in=shorts).exists()
    # each fund entry is a liquidation's journal (fee, deficit cover) or the seed deposit
    explained = {
        int(step["journal"])
        for liq in done
        for step in liq.steps
        if step.get("journal") not in (None, "None")
    }
    fund_entries = Entry.objects.filter(ledger_account=insurance_fund()).select_related("journal")
    assert fund_entries.count() > 1
    for entry in fund_entries:
        assert entry.journal_id in explained or entry.journal.memo == "seed the fund", entry
    assert sum(e.amount for e in fund_entries) == insurance_fund().balance
    assert ledger_differences().clean


def test_an_isolated_position_past_its_own_line_is_closed_and_the_cross_pool_left_alone(
    market, later
):
    # given: 0.2 BTC isolated with 2,000 USDT of margin, 5,000 more USDT in the cross wallet
    account = funded_account(usdt="7000", fills=[("BTCUSDT", "buy", "0.2")])
    position_margin_mode_switch(
        account=account,
        instrument="BTCUSDT",
        mode="isolated",
        isolated_margin=Decimal("2000"),
        idempotency_key="test-isolate",
    )
    # when: BTC at 85,300 leaves the isolated margin 2,000 − 1,940 = 60 against MM 68.24
    run = crash_and_tick(later, 85300)
    (due,) = run.to_liquidate
    liquidation = liquidation_run(account_id=due[0], tick_id=due[1])
    # then: the tick put the account in liquidation on its isolated position's own ratio
    # (issue 14: isolated positions move the account's state like the cross pool)
    account.refresh_from_db()
    assert account.state == AccountState.LIQUIDATION
    assert Position.objects.get(margin_account=account).quantity == 0
    fill = Fill.objects.get(reason=Fill.Reason.LIQUIDATION)
    assert fill.quantity == Decimal("-0.2") and fill.price == Decimal("85129.4")
    assert liquidation.status == Liquidation.Status.DONE
    assert ledger_differences().clean


def test_the_desk_forced_reduction_refuses_a_stale_price(market, make_user):
    # given: a proposal to reduce a BTC position; then BTC's index stops updating (2 min old)
    account = funded_account(usdt="20000", fills=[("BTCUSDT", "buy", "0.2")])
    position = Position.objects.get(margin_account=account)
    proposal = forced_reduction_propose(
        position=position,
        quantity=Decimal("0.1"),
        reason="reduce",
        proposer=make_user(RISK_OFFICER, username="o1"),
    )
    AssetPrice.objects.filter(asset__symbol="BTC").update(
        updated_at=timezone.now() - timedelta(seconds=120)
    )
    # when / then: the approval is refused with the reason; nothing traded
    with pytest.raises(ApplicationError, match="BTC is stale"):
        proposal_approve(proposal=proposal, approver=make_user(RISK_MANAGER, username="m1"))
    position.refresh_from_db()
    assert position.quantity == Decimal("0.2")
    assert not Fill.objects.filter(reason=Fill.Reason.DESK).exists()
    assert Proposal.objects.get(pk=proposal.pk).status == Proposal.Status.PENDING

"""Recalibration drafts a parameter proposal from the index history, with its backtest, and a
risk manager approves it through the four-eyes path."""

import re
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from margin.models import Asset, AssetPriceHistory, Bracket, Proposal
from margin.selectors.parameters import parameters_in_force
from margin.services.proposals import proposal_approve
from margin.services.recalibration import POLICY, recalibration_propose

SAMPLE_S = POLICY.sample_s


@pytest.fixture
def demo_speed(settings):
    # One second of history is one 60 s sample of market time, as in `make run`.
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = SAMPLE_S


def record_history(symbol: str, prices: np.ndarray, *, until) -> None:
    asset = Asset.objects.get(symbol=symbol)
    start = until - timedelta(seconds=len(prices) - 1)
    AssetPriceHistory.objects.bulk_create(
        AssetPriceHistory(asset=asset, at=start + timedelta(seconds=n), price=Decimal(f"{p:.2f}"))
        for n, p in enumerate(prices)
    )


def gbm(sigma_per_sample: float, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 95_000.0 * np.exp(np.cumsum(rng.normal(0.0, sigma_per_sample, samples)))


@pytest.mark.django_db
def test_a_volatile_history_proposes_higher_btc_rates_with_their_backtest(market, demo_speed):
    # given four days of BTC samples with σ = 0.4% a minute (about 100% a year is 0.08%:
    #       this is a crisis), far beyond what BTCUSDT's 0.4% first maintenance rate covers
    now = timezone.now()
    record_history("BTC", gbm(0.004, 6000, seed=5), until=now)
    version = parameters_in_force()
    current = Bracket.objects.get(version=version, instrument__symbol="BTCUSDT", floor=0).mmr
    # when  recalibration runs
    proposal = recalibration_propose(now=now)
    # then  it proposes BTCUSDT's ladder with a first rate near the 99% expected shortfall of a
    #       15-sample move, ≈ 2.892 × 0.004 × √15 = 4.48%
    assert proposal is not None and proposal.status == Proposal.Status.PENDING
    ladder = proposal.payload["brackets"]["BTCUSDT"]
    first = Decimal(ladder[0]["mmr"])
    assert first == pytest.approx(Decimal("0.0448"), rel=Decimal("0.15"))
    assert all(Decimal(r["max_leverage"]) <= 1 / (2 * Decimal(r["mmr"])) for r in ladder)
    assert [Decimal(r["mmr"]) for r in ladder] == sorted(Decimal(r["mmr"]) for r in ladder)
    # and   its backtest shows the rate in force failing and the proposed one passing
    backtest = {row["instrument"]: row for row in proposal.impact["backtest"]}["BTCUSDT"]
    assert backtest["current"]["rate"] == str(current)
    assert not backtest["current"]["passes"]
    assert backtest["current"]["exceedances"] > backtest["proposed"]["exceedances"]
    assert backtest["proposed"]["coverage"] >= 0.985
    # and   the impact preview over the whole book is attached, as for an officer's proposal
    assert proposal.impact["version"] == version.number


@pytest.mark.django_db
def test_a_manager_approves_the_recalibration(market, demo_speed, manager):
    now = timezone.now()
    record_history("BTC", gbm(0.004, 3000, seed=9), until=now)
    proposal = recalibration_propose(now=now)
    # when  a risk manager approves it (nobody approves their own: the proposer is the service)
    proposal_approve(proposal=proposal, approver=manager, note="backtest reviewed")
    # then  the new version carries the proposed ladder
    version = parameters_in_force(timezone.now() + timedelta(seconds=1))
    rows = Bracket.objects.filter(version=version, instrument__symbol="BTCUSDT").order_by("floor")
    assert [str(r.mmr.normalize()) for r in rows][:2] == [
        str(Decimal(r["mmr"]).normalize()) for r in proposal.payload["brackets"]["BTCUSDT"][:2]
    ]


@pytest.mark.django_db
def test_one_recalibration_waits_for_its_decision(market, demo_speed):
    now = timezone.now()
    record_history("BTC", gbm(0.004, 3000, seed=2), until=now)
    assert recalibration_propose(now=now) is not None
    assert recalibration_propose(now=now) is None
    assert Proposal.objects.count() == 1


@pytest.mark.django_db
def test_a_short_history_proposes_nothing(market, demo_speed):
    now = timezone.now()
    record_history("BTC", gbm(0.004, POLICY.min_samples - 10, seed=1), until=now)
    assert recalibration_propose(now=now) is None


@pytest.mark.django_db
def test_a_calm_history_proposes_the_volatility_floor(market, demo_speed):
    # given a BTC history that barely moves: the estimate is the published floor
    now = timezone.now()
    record_history("BTC", 95_000.0 * np.cumprod(np.full(2000, 1.00001)), until=now)
    proposal = recalibration_propose(now=now)
    backtest = {row["instrument"]: row for row in proposal.impact["backtest"]}["BTCUSDT"]
    assert backtest["estimate"]["binding"] == "floor"


@pytest.mark.django_db
def test_the_backtest_shows_as_chart_and_table_on_the_proposal_and_the_disclosure(
    client, market, demo_speed, manager
):
    # given a recalibration proposal from a crisis history
    now = timezone.now()
    record_history("BTC", gbm(0.004, 3000, seed=9), until=now)
    proposal = recalibration_propose(now=now)
    backtest = {row["instrument"]: row for row in proposal.impact["backtest"]}["BTCUSDT"]
    # when  the manager opens it, and anyone opens the disclosure page
    client.force_login(manager)
    page = client.get(reverse("desk:proposal", args=[proposal.pk])).content.decode()
    client.logout()
    public = client.get(reverse("disclosure")).content.decode()
    # then  both show the chart (a bar per rate and the target line) and the table's figures
    current = backtest["current"]
    row = (
        rf"<td>BTCUSDT</td><td>in force</td>\s*<td class=\"num\">{re.escape(current['rate'])}</td>"
        rf"<td class=\"num\">{current['observations']}</td>"
        rf"<td class=\"num\">{current['exceedances']}</td>"
    )
    for html in (page, public):
        assert 'class="backtest-chart"' in html and 'class="target"' in html
        assert html.count('class="bar-current"') == html.count('class="bar-proposed"') >= 1
        assert re.search(row, html), row
        for side in (backtest["current"], backtest["proposed"]):
            assert ("covers" if side["passes"] else "<b>rejected</b>") in html
    assert f"#{proposal.pk}" in public

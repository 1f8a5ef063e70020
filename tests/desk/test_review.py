"""The desk's account review reads the same figures as the queue: the latest margin ratios, and
a stress table that shows what each scenario does to the pool."""

from decimal import Decimal

import pytest
from django.urls import reverse

from margin.models import MarginSnapshot
from margin.selectors import desk as review_module
from margin.services.revaluation import revaluation_tick_run
from tests.desk.conftest import move_btc

pytestmark = pytest.mark.django_db


def test_review_plots_the_latest_ratios_oldest_first(client, officer, book, market, monkeypatch):
    # given: three more ticks, each at a lower BTC price, and a history of three points
    account = book["healthy"]
    for price in (84000, 83000, 82000):
        move_btc(market, price)
        revaluation_tick_run(now=market())
    monkeypatch.setattr(review_module, "RATIO_HISTORY_POINTS", 3)
    newest = list(
        MarginSnapshot.objects.filter(account=account)
        .order_by("-tick_id")
        .values_list("margin_ratio", flat=True)[:3]
    )
    client.force_login(officer)
    # when
    review = client.get(reverse("desk:account", args=[account.pk])).context["review"]
    # then: the three latest ratios, the newest last (the first tick's ratio is not among them)
    assert review.ratio_history == [float(r) for r in reversed(newest)]
    assert review.ratio_history[-1] > review.ratio_history[0]


def test_review_stress_table_shows_each_scenarios_loss_and_the_queues_stress_loss(
    client, officer, book
):
    # given: a well-funded account long 0.5 BTC at 85,400 (no scenario takes it under MM)
    account = book["healthy"]
    snapshot = MarginSnapshot.objects.filter(account=account).order_by("-tick_id").first()
    client.force_login(officer)
    # when
    response = client.get(reverse("desk:account", args=[account.pk]))
    review = response.context["review"]
    # then: every coin −10% loses the position's 10% (0.5 × 85,400 × 0.1), not "0.00"
    crash = next(s for s in review.scenarios if s.label == "Every coin -10%")
    assert not crash.under_maintenance
    assert crash.pnl == pytest.approx(-4270, rel=1e-6)
    rally = next(s for s in review.scenarios if s.label == "Every coin +20%")
    assert rally.pnl == pytest.approx(8540, rel=1e-6)
    # and the queue's figure, the same snapshot's stress loss, is on the page
    assert review.stress_loss == snapshot.stress_margin
    page = response.content.decode()
    assert "−4,270.00" in page
    assert f"{snapshot.stress_margin.quantize(Decimal('0.01')):,}" in page

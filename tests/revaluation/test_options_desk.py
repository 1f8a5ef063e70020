"""The desk's stress runs and cascades over a book holding options (PostgreSQL): each option is
priced with Black-76 at the shocked forward and the scenario's shocked vol, not by delta."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from margin.engine.options import black76, shocked_vol
from margin.models import CascadeRun, MarkPrice, Position
from margin.selectors.accounts import account_state_load
from margin.selectors.book import desk_book, held_options
from margin.services.cascade import cascade_run_execute
from margin.services.parameters import parameter_impact_preview
from margin.services.stress_runs import stress_run_create
from tests.factories import UserFactory
from tests.options_support import series
from tests.revaluation.factories import funded_account
from tests.revaluation.test_options_trading import wallet

pytestmark = pytest.mark.django_db

CRASH = Decimal("-0.4")


def _short_put_seller():
    """An account short 1 BTC put K = 94 000 (premium in its wallet), nothing else: no linear
    position, so only its options can take it under."""
    put = series("put", 94000, 1)
    seller = funded_account(usdt="16000", fills=[(put.symbol, "sell", "1")])
    return put, seller


def _crashed_balance(put, seller) -> Decimal:
    """The seller's wallet less 1 put at Black-76 with F × 0.6 and σ × (1 + 0.40·scale): the
    crash raises vol by the grid's vol-up, scaled by the days left."""
    mark = MarkPrice.objects.get(instrument=put)
    (days,) = held_options(desk_book()).options.series.expiry_days
    days = Decimal(float(days))
    vol = shocked_vol(mark.implied_vol, Decimal("0.40"), days)
    value = black76("put", mark.index_price * (1 + CRASH), put.strike, vol, days).value
    return wallet(seller) - value


def test_a_stress_run_takes_a_short_put_under_by_its_full_revaluation(options_market):
    # given
    put, seller = _short_put_seller()
    assert Position.objects.get(margin_account=seller).quantity == -1
    # when
    run = stress_run_create(actor=UserFactory(), kind="uniform", options={"move": str(CRASH)})
    # then
    balance = _crashed_balance(put, seller)
    assert balance < 0
    assert run.accounts_under_maintenance == 1
    assert run.details["worst_accounts"] == [seller.pk]
    assert float(run.deficit) == pytest.approx(float(-balance), rel=1e-9)


def test_a_cascade_liquidates_the_short_put_and_draws_its_deficit(options_market):
    # given
    put, seller = _short_put_seller()
    run = CascadeRun.objects.create(
        options={"scenario": "uniform", "move": str(CRASH), "depth_usd": 0, "max_rounds": 5},
        label="options",
        created_by=UserFactory(),
    )
    # when
    cascade_run_execute(run_id=run.pk)
    # then
    run.refresh_from_db()
    assert run.status == CascadeRun.Status.DONE
    first = run.rounds[0]
    assert first["accounts"] == [seller.pk] and first["positions_closed"] == 1
    assert first["deficit"] == pytest.approx(float(-_crashed_balance(put, seller)), rel=1e-9)
    assert run.rounds[-1]["accounts_liquidated"] == 0


def test_the_parameter_preview_margins_the_short_put_by_the_grid_at_its_value(
    options_market, monkeypatch
):
    # given: the put seller, whose only risk is the put: with its options left out (or taken
    # linearly at today's prices) the account has no maintenance margin and crosses nothing
    _, seller = _short_put_seller()
    monkeypatch.setattr(timezone, "now", lambda: options_market + timedelta(seconds=1))
    quote = account_state_load(seller).quote()
    ratio = quote.maintenance_margin / quote.margin_balance
    assert 0 < ratio < Decimal("0.5")  # under the warning line in force
    warning = (ratio * Decimal("0.9")).quantize(Decimal("0.0001"))
    # when: the warning line moved under the account's ratio
    impact = parameter_impact_preview(payload={"fields": {"warning_ratio": str(warning)}})
    # then: the grid's MM on the balance holding the short at its Black-76 value, as the
    # reference quotes it, and the account newly past the warning line
    for figure in ("maintenance_margin_now", "maintenance_margin_proposed"):
        assert impact[figure] == pytest.approx(float(quote.maintenance_margin), rel=1e-9)
    by_name = {t["name"]: t for t in impact["thresholds"]}
    assert by_name["warning_ratio"]["accounts_now"] == 0
    assert by_name["warning_ratio"]["newly_crossing"] == 1

"""run_scenario reports funding when a step crosses a funding time and a future's settlement
when a step crosses its expiry (the contract's `funding` and `settlement` events)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from margin.engine.funding import funding_payment
from margin.reference_data import INSTRUMENTS
from tests.scenarios.support import account, events, position, run_scenario, scenario

pytestmark = pytest.mark.django_db

FUTURE_EXPIRY = INSTRUMENTS["BTCUSDT_261225"][2]


@pytest.fixture
def market_clock(settings):
    """Market time is the wall clock's (a real market), funding settles on its 8-hour grid
    (00:00, 08:00, 16:00 UTC)."""
    settings.DEMO_MARKET_ENABLED = False
    settings.FUNDING_SETTLEMENT_ENABLED = True
    settings.FUNDING_ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_scenario_reports_funding_and_the_futures_settlement(reference, market_clock):
    # given: alice long 0.1 BTCUSDT and long 0.1 of the BTC quarterly; prices steady at 95,000
    # until 1,000 s before the future's expiry, 96,000 from then on; a step 5 s after expiry
    now = timezone.now()
    until_expiry = int((FUTURE_EXPIRY - now).total_seconds())
    if until_expiry < 2 * 86400:
        pytest.skip("the seeded quarterly expires too soon for this scenario's path")
    alice = account(
        "alice",
        {"USDT": "20000"},
        position("BTCUSDT", "long", "0.1", "95000"),
        position("BTC-FUTURE", "long", "0.1", "95000"),
    )
    steps = [
        (until_expiry - 1000, {"BTC": "96000"}),
        (until_expiry - 10, {"BTC": "96000"}),
        (until_expiry + 5, {"BTC": "96000"}),
    ]
    # when
    result = run_scenario(scenario([alice], steps))
    # then: the step that crossed the 00:00 funding of the expiry day reports alice's payment:
    # marks on the index (no premium), so the interest rate, 0.01%; the long pays
    crossing = str(until_expiry - 1000)
    (paid,) = [
        e
        for e in events(result, "funding", "alice")
        if e["at_s"] == crossing and e["symbol"] == "BTCUSDT"
    ]
    assert Decimal(paid["rate"]) == Decimal("0.0001")
    assert Decimal(paid["amount"]) == funding_payment(
        quantity=Decimal("0.1"), mark_price=Decimal(paid["mark_price"]), rate=Decimal("0.0001")
    )
    assert Decimal(paid["amount"]) < 0
    funding_day = FUTURE_EXPIRY.replace(hour=0)
    assert abs(Decimal(paid["funding_time_s"]) - Decimal((funding_day - now).total_seconds())) < 5
    # and the step after expiry reports the settlement of the future at the index TWAP of its
    # last 30 minutes: 800 s at 95,000 then 1,000 s at 96,000
    (settled,) = events(result, "settlement", "alice")
    assert settled["at_s"] == str(until_expiry + 5)
    assert settled["symbol"].startswith("BTCUSDT_") and settled["side"] == "long"
    assert Decimal(settled["quantity"]) == Decimal("0.1")
    twap = (800 * Decimal(95000) + 1000 * Decimal(96000)) / 1800
    assert abs(Decimal(settled["price"]) - twap) < 1
    pnl = (Decimal(settled["price"]) - 95000) * Decimal("0.1")
    assert abs(Decimal(settled["realized_pnl"]) - pnl) < Decimal("1e-12")
    # the future is gone from alice's positions; the ledger balances
    symbols = [p["symbol"] for p in result["accounts"]["alice"]["positions"]]
    assert symbols == ["BTCUSDT"]
    assert result["ledger"] == {"balanced": True, "differences": 0}

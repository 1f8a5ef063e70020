"""Margin calls a desk can act on (issue 14): amount and deadline, isolated positions called
like the cross pool, reduce-only past the deadline (audited, undone when back), and
reduce-only blocking withdrawals and the removal of isolated margin."""

from decimal import Decimal

import pytest

from margin.errors import ApplicationError
from margin.models import AuditEntry
from margin.services.collateral import collateral_withdraw
from margin.services.margin_mode import isolated_margin_remove, position_margin_mode_switch
from tests.revaluation.factories import funded_account
from tests.scenarios.support import account, assert_books_sound, events, position, run_scenario
from tests.scenarios.support import scenario as build

pytestmark = pytest.mark.django_db


def _path(**isolated):
    # 1 BTC at 50x on 1,950 USDT (1,902.5 after the taker fee). At 93,600: margin balance
    # 502.5, MM 0.5% × 93,600 − 50 = 418: ratio 0.83, a margin call; back to the warning
    # level (0.5) needs 418 / 0.5 − 502.5 = 333.5 more.
    return build(
        [
            account(
                "alice",
                {"USDT": "1950" if not isolated else "2000"},
                position("BTCUSDT", "long", "1", "95000", "50", **isolated),
            )
        ],
        [(10, {"BTC": "93600"}), (40, {"BTC": "93600"}), (50, {"BTC": "95000"})],
        parameters={"margin_call_deadline_s": "20"},
    )


def test_a_margin_call_states_its_amount_and_deadline_then_turns_reduce_only_and_back():
    result = run_scenario(_path())
    (call,) = events(result, "margin_call", "alice")
    assert call["at_s"] == "10" and Decimal(call["amount"]) == Decimal("333.50")
    assert call["deadline"]
    restricted, lifted = events(result, "reduce_only", "alice")
    assert (restricted["at_s"], restricted["reduce_only"]) == ("40", True)
    assert (lifted["at_s"], lifted["reduce_only"]) == ("50", False)
    assert result["accounts"]["alice"]["reduce_only"] is False
    assert not events(result, "liquidation")
    assert_books_sound(result)


def test_an_isolated_position_near_its_line_is_called_like_the_cross_pool():
    # the same position isolated with 1,950 of its own margin (1,902.5 after the fee)
    result = run_scenario(_path(isolated_margin="1950"))
    (call,) = events(result, "margin_call", "alice")
    assert call["at_s"] == "10" and Decimal(call["amount"]) == Decimal("333.50")
    assert_books_sound(result)


def test_reduce_only_blocks_withdrawals_and_removing_isolated_margin(market):
    trader = funded_account(usdt="20000", fills=[("BTCUSDT", "buy", "0.1")])
    position_margin_mode_switch(
        account=trader,
        instrument="BTCUSDT",
        mode="isolated",
        isolated_margin=Decimal("2000"),
        idempotency_key="iso",
    )
    trader.reduce_only = True
    trader.save(update_fields=["reduce_only"])
    with pytest.raises(ApplicationError, match="reduce-only"):
        collateral_withdraw(account=trader, asset="USDT", amount=Decimal("1"), idempotency_key="w")
    with pytest.raises(ApplicationError, match="reduce-only"):
        isolated_margin_remove(
            account=trader, instrument="BTCUSDT", amount=Decimal("1"), idempotency_key="r"
        )
    assert not AuditEntry.objects.filter(action="collateral.withdraw").exists()


def test_the_new_liquidation_parameters_are_published_on_disclosure(client, reference):
    page = client.get("/disclosure/").content.decode()
    assert 'id="liquidation-fee-rate">0.50%<' in page
    assert 'id="margin-call-deadline">3600 s<' in page
    assert 'id="stale-materiality">5.00% of MM or margin balance · 10.00%<' in page

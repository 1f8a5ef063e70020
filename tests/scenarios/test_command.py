"""The run_scenario contract (tests/data/scenarios/README.md): bad input exits 2 with one line
naming the field; the run never touches the live book."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from margin.models import AssetPrice, Journal, Liquidation, MarginAccount, RevaluationTick
from tests.revaluation.factories import funded_account
from tests.scenarios.support import account, position, run_scenario, scenario

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def one_btc_long(**overrides):
    row = position("BTCUSDT", "long", "1", "95000", "50") | overrides
    return scenario([account("alice", {"USDT": "1950"}, row)], [(10, {"BTC": "92000"})])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["accounts"][0]["positions"][0].update(symbol="DOGEUSDT"),
            "accounts[0].positions[0].symbol: unknown symbol 'DOGEUSDT'",
        ),
        (
            lambda s: s["accounts"][0]["positions"][0].update(quantity="-1"),
            'accounts[0].positions[0].quantity: must be a positive decimal, got "-1"',
        ),
        (
            lambda s: s["accounts"][0]["collateral"].update(XYZ="1"),
            "accounts[0].collateral.XYZ: unknown asset",
        ),
        (
            lambda s: s.update(parameters={"no_such_rate": "0.1"}),
            "parameters.no_such_rate: no_such_rate is not a risk parameter.",
        ),
        (
            lambda s: s.update(parameters={"liquidation_target_ratio": "2"}),
            # the engine's parameter-version validator speaks (issue 15)
            "parameters.liquidation_target_ratio: The parameter version is not sound: "
            "liquidation_target_ratio: a liquidation reduces the ratio to the target: it must "
            "lie above 0 and below the liquidation ratio 1.000000000000, got 2",
        ),
        (
            lambda s: s["prices"][1].update(at_s=0),
            "prices[1].at_s: must be later than the step before",
        ),
        (
            lambda s: s["prices"][1]["index"].update(BTC=92000.5),
            "prices[1].index.BTC: must be a decimal string, got 92000.5",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field(change, message):
    doc = one_btc_long()
    change(doc)
    with pytest.raises(CommandError) as refused:
        run_scenario(doc)
    assert refused.value.returncode == 2
    assert str(refused.value) == message


def test_not_json_on_standard_input_exits_2_from_the_shell():
    done = subprocess.run(
        [sys.executable, "manage.py", "run_scenario", "-"],
        input="{not json",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("CommandError: input: not JSON")
    assert done.stdout == ""


def test_a_scenario_never_touches_the_live_book(market, later):
    # given: a live account, live prices
    live = funded_account(usdt="1000", fills=[("BTCUSDT", "buy", "0.01")])
    prices = list(AssetPrice.objects.order_by("pk").values_list("pk", "price", "updated_at"))
    journals = Journal.objects.count()
    # when: a scenario with its own book crashes BTC and liquidates
    result = run_scenario(one_btc_long())
    # then: it ran, and nothing of it is left in the live book
    assert result["ticks"] == 2 and result["events"]
    assert list(MarginAccount.objects.values_list("pk", flat=True)) == [live.pk]
    assert (
        list(AssetPrice.objects.order_by("pk").values_list("pk", "price", "updated_at")) == prices
    )
    assert Journal.objects.count() == journals
    assert not RevaluationTick.objects.exists() and not Liquidation.objects.exists()

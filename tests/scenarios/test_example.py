"""The published example scenario (tests/data/scenarios/example_liquidation.json): each of its
`expect` statements is an assertion here, and a statement without one fails the test."""

import json

import pytest

from tests.scenarios.support import EXAMPLE, d, events, run_scenario

pytestmark = pytest.mark.django_db


def _alice_wallet_explained(result):
    negative = any(d(v) < 0 for v in result["accounts"]["alice"]["wallet"].values())
    explained = events(result, "write_off", "alice") or events(result, "adl", "alice")
    return not negative or bool(explained)


CHECKS = {
    "at least one event of kind liquidation for alice on BTCUSDT": lambda r: any(
        e["symbol"] == "BTCUSDT" for e in events(r, "liquidation", "alice")
    ),
    "every liquidation event has fee > 0": lambda r: all(
        d(e["fee"]) > 0 for e in events(r, "liquidation")
    ),
    "the insurance fund ends above 100000 (it received the fee and any remainder)": lambda r: (
        d(r["insurance_fund"]["USDT"]) > 100000
    ),
    "the insurance fund never goes below 0 at any step": lambda r: all(
        d(v) >= 0 for step in r["timeline"] for v in step["insurance_fund"].values()
    ),
    "ledger.balanced is true and ledger.differences is 0": lambda r: (
        r["ledger"]["balanced"] is True and r["ledger"]["differences"] == 0
    ),
    "alice's wallet never ends negative unless a write_off or adl event explains it": (
        _alice_wallet_explained
    ),
}


def test_the_example_scenario_meets_every_expectation():
    example = json.loads(EXAMPLE.read_text())
    result = run_scenario(example["scenario"])
    assert events(result, "liquidation", "alice"), result["events"]
    for statement in example["expect"]:
        assert statement in CHECKS, f"no assertion for: {statement}"
        assert CHECKS[statement](result), statement

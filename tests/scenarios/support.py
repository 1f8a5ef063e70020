"""Running scenarios in tests: through the management command, as a risk team would."""

import io
import json
from decimal import Decimal
from pathlib import Path

from django.core.management import call_command

EXAMPLE = Path(__file__).parent.parent / "data" / "scenarios" / "example_liquidation.json"
OPENING_INDEX = {"BTC": "95000", "ETH": "3400", "SOL": "230", "USDT": "1", "USDC": "1"}


def run_scenario(scenario: dict) -> dict:
    """`manage.py run_scenario -` on the scenario; its JSON output."""
    stdin, stdout = io.StringIO(json.dumps(scenario)), io.StringIO()
    import sys

    saved, sys.stdin = sys.stdin, stdin
    try:
        call_command("run_scenario", "-", stdout=stdout)
    finally:
        sys.stdin = saved
    return json.loads(stdout.getvalue())


def position(symbol, side, quantity, entry, leverage="10", **isolated) -> dict:
    row = {
        "symbol": symbol,
        "side": side,
        "quantity": str(quantity),
        "entry_price": str(entry),
        "leverage": str(leverage),
        "margin_mode": "cross",
    }
    if isolated:
        row |= {"margin_mode": "isolated", "isolated_margin": str(isolated["isolated_margin"])}
    return row


def account(name, collateral, *positions) -> dict:
    return {
        "name": name,
        "collateral": {k: str(v) for k, v in collateral.items()},
        "positions": list(positions),
    }


def scenario(accounts, steps, *, fund="0", parameters=None) -> dict:
    """`steps`: [(at_s, {asset: price})] after the opening step at 0."""
    doc = {
        "insurance_fund": {"USDT": str(fund)},
        "accounts": accounts,
        "prices": [{"at_s": 0, "index": dict(OPENING_INDEX)}]
        + [
            {
                "at_s": at_s,
                **(prices if "quotes" in prices or "index" in prices else {"index": prices}),
            }
            for at_s, prices in steps
        ],
    }
    if parameters:
        doc["parameters"] = parameters
    return doc


def events(result: dict, kind: str, account: str | None = None) -> list[dict]:
    return [
        e
        for e in result["events"]
        if e["kind"] == kind and (account is None or e.get("account") == account)
    ]


def d(value) -> Decimal:
    return Decimal(value)


def assert_books_sound(result: dict) -> None:
    """What must hold after every scenario: a balanced ledger, a fund never below 0, no
    negative wallet without a write-off (or ADL) that explains it."""
    assert result["ledger"] == {"balanced": True, "differences": 0}
    for step in result["timeline"]:
        assert all(d(v) >= 0 for v in step["insurance_fund"].values()), step
    assert all(d(v) >= 0 for v in result["insurance_fund"].values())
    for name, state in result["accounts"].items():
        if any(d(v) < 0 for v in state["wallet"].values()):
            assert events(result, "write_off", name) or events(result, "adl", name), name

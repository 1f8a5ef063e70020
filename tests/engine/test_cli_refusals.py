"""The command line refuses bad input with status 2 and one line naming the field."""

import copy
import json
import subprocess

import pytest

from margin.engine.errors import EngineInputError
from margin.engine.request import parse_quote_request
from tests.engine.support import run_python

GOOD = {
    "account": {
        "credit_tier": {"haircut_scale": "1", "mm_scale": "1"},
        "collateral": [{"asset": "USDT", "quantity": "5000", "price": "1"}],
        "positions": [
            {
                "id": "BTCUSDT",
                "side": "long",
                "quantity": "0.8",
                "entry_price": "61000",
                "mark_price": "64000",
                "leverage": "10",
                "margin_mode": "cross",
                "isolated_margin": None,
                "brackets": [
                    {"floor": "0", "mmr": "0.004", "max_leverage": "125"},
                    {"floor": "50000", "mmr": "0.005", "max_leverage": "100", "cum": "50"},
                ],
            }
        ],
    }
}


def _position(request: dict) -> dict:
    return request["account"]["positions"][0]


def _missing_quantity(r):
    del _position(r)["quantity"]


def _isolated_without_margin(r):
    _position(r)["margin_mode"] = "isolated"


def _duplicate_position(r):
    r["account"]["positions"].append(copy.deepcopy(_position(r)))


BAD = {
    "missing field": (_missing_quantity, "account.positions[0].quantity: missing"),
    "not a decimal": (
        lambda r: _position(r).update(quantity="0,8"),
        "account.positions[0].quantity: ",
    ),
    "JSON float": (lambda r: _position(r).update(quantity=0.8), "account.positions[0].quantity: "),
    "JSON integer": (lambda r: _position(r).update(leverage=10), "account.positions[0].leverage: "),
    "not finite": (
        lambda r: _position(r).update(mark_price="NaN"),
        "account.positions[0].mark_price: ",
    ),
    "out of range": (
        lambda r: _position(r).update(mark_price="1e999999"),
        "account.positions[0].mark_price: must stay below 1e30",
    ),
    "negative quantity": (
        lambda r: _position(r).update(quantity="-1"),
        "account.positions[0].quantity: must be a positive decimal, got -1",
    ),
    "leverage above the bracket's": (
        lambda r: _position(r).update(leverage="101"),
        "account.positions[0].leverage: 101 is above",
    ),
    "gap": (
        lambda r: _position(r)["brackets"][0].update(cap="40000"),
        "account.positions[0].brackets[0].cap: ",
    ),
    "unsorted floors": (
        lambda r: _position(r)["brackets"].append(
            {"floor": "20000", "mmr": "0.01", "max_leverage": "50"}
        ),
        "account.positions[0].brackets[2].floor: ",
    ),
    "first floor not 0": (
        lambda r: _position(r)["brackets"][0].update(floor="10"),
        "account.positions[0].brackets[0].floor: ",
    ),
    "wrong cum": (
        lambda r: _position(r)["brackets"][1].update(cum="40"),
        "account.positions[0].brackets[1].cum: must be 50",
    ),
    "unknown margin_mode": (
        lambda r: _position(r).update(margin_mode="portfolio"),
        "account.positions[0].margin_mode: ",
    ),
    "isolated without isolated_margin": (
        _isolated_without_margin,
        "account.positions[0].isolated_margin: ",
    ),
    "unknown side": (lambda r: _position(r).update(side="buy"), "account.positions[0].side: "),
    "unknown field": (
        lambda r: _position(r).update(margin_mod="cross"),
        "account.positions[0].margin_mod: ",
    ),
    "repeated position id": (_duplicate_position, "account.positions[1].id: "),
    "negative haircut ratio": (
        lambda r: r["account"]["collateral"][0].update(
            haircut_tiers=[{"floor": "0", "ratio": "-0.1"}]
        ),
        "account.collateral[0].haircut_tiers[0].ratio: ",
    ),
    "no account": (lambda r: r.pop("account"), "request.account: missing"),
}


def _bad_request(name: str) -> dict:
    request = copy.deepcopy(GOOD)
    BAD[name][0](request)
    return request


def test_the_good_request_is_accepted():
    assert (
        parse_quote_request(copy.deepcopy(GOOD)).positions[0].quantity
        == parse_quote_request(GOOD).positions[0].quantity
    )


@pytest.mark.parametrize("name", sorted(BAD))
def test_parser_names_the_field(name):
    with pytest.raises(EngineInputError) as refusal:
        parse_quote_request(_bad_request(name))
    assert str(refusal.value).startswith(BAD[name][1])


def _run(stdin: str, *arguments: str) -> subprocess.CompletedProcess:
    return run_python("-m", "margin.engine", "quote", *arguments, stdin=stdin)


@pytest.mark.parametrize(
    "name", ["JSON float", "negative quantity", "wrong cum", "isolated without isolated_margin"]
)
def test_command_line_exits_2_with_one_line(name):
    run = _run(json.dumps(_bad_request(name)), "-")
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(BAD[name][1])


def test_command_line_refuses_what_is_not_json():
    run = _run("{", "-")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("request: not valid JSON")


def test_command_line_refuses_a_missing_file(tmp_path):
    run = _run("", str(tmp_path / "absent.json"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "cannot read" in run.stderr

"""The published vectors, through the command line and through both implementations."""

import json
from decimal import Decimal

import pytest

from margin.engine.reference import quote_account
from margin.engine.request import parse_quote_request, render_quote
from margin.engine.types import BracketTable
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.support import binance_brackets, close, linked_cases, quote_cases, run_python

# Every published case: the quote cases and those of prices of one underlying moving together.
CASES = {**quote_cases(), **linked_cases()}
ACCOUNT_FIGURES = (
    "collateral_value",
    "margin_balance",
    "maintenance_margin",
    "initial_margin",
    "margin_ratio",
    "withdrawable",
)
POSITION_FIGURES = (
    "maintenance_margin",
    "initial_margin",
    "unrealized_pnl",
    "liquidation_price",
    "bankruptcy_price",
)


def _as_decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def assert_answer_meets(answer: dict, expect: dict) -> None:
    for name, wanted in expect.get("account", {}).items():
        assert close(_as_decimal(answer["account"][name]), _as_decimal(wanted), scale=1e-6), name
    assert [row["id"] for row in answer["positions"]] == [row["id"] for row in expect["positions"]]
    for row, wanted_row in zip(answer["positions"], expect["positions"], strict=True):
        for name, wanted in wanted_row.items():
            if name == "id":
                continue
            if name == "bracket":
                assert int(row[name]) == int(wanted)
            else:
                assert close(_as_decimal(row[name]), _as_decimal(wanted), scale=1e-6), (
                    row["id"],
                    name,
                )


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_line_answers_each_case(name, tmp_path):
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(CASES[name]["request"]))
    run = run_python("-m", "margin.engine", "quote", str(request_file))
    assert run.returncode == 0, run.stderr
    assert_answer_meets(json.loads(run.stdout), CASES[name]["expect"])


def test_command_line_reads_standard_input_and_explains():
    request = CASES["bybit_mm"]["request"]
    run = run_python("-m", "margin.engine", "quote", "-", "--explain", stdin=json.dumps(request))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert_answer_meets(answer, CASES["bybit_mm"]["expect"])
    steps = answer["explain"]["positions.XYZ.maintenance_margin"]
    assert steps[0]["text"] == "MM = notional 3,500.00 × mmr 0.035 − cum 30.00 = 92.50"


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_answers_each_case(name):
    account = parse_quote_request(CASES[name]["request"])
    assert_answer_meets(render_quote(quote_account(account)), CASES[name]["expect"])


def _vector_answers(names: list[str]) -> None:
    book, marks, prices = book_from_accounts(
        [parse_quote_request(CASES[n]["request"]) for n in names]
    )
    result = revalue(book, marks, prices)
    position = 0
    for account, name in enumerate(names):
        expect = CASES[name]["expect"]
        vector_account = {
            "collateral_value": result.collateral_value[account],
            "margin_balance": result.margin_balance[account],
            "maintenance_margin": result.account_maintenance_margin[account],
            "initial_margin": result.account_initial_margin[account],
            "margin_ratio": result.margin_ratio[account],
            "withdrawable": result.withdrawable[account],
        }
        for figure, wanted in expect.get("account", {}).items():
            assert close(vector_account[figure], _as_decimal(wanted), scale=1e-6), (name, figure)
        for wanted_row in expect["positions"]:
            if "bracket" in wanted_row:
                assert result.bracket[position] == int(wanted_row["bracket"])
            for figure in POSITION_FIGURES:
                if figure in wanted_row:
                    got = getattr(result, figure)[position]
                    assert close(got, _as_decimal(wanted_row[figure]), scale=1e-6), (name, figure)
            position += 1
    assert position == book.n_positions


def test_vectorized_engine_answers_every_quote_case_in_one_book():
    _vector_answers(sorted(quote_cases()))


@pytest.mark.parametrize("name", sorted(linked_cases()))
def test_vectorized_engine_answers_each_linked_case(name):
    # A book of its own: its BTC price differs from the quote cases' (one market per book).
    _vector_answers([name])


@pytest.mark.parametrize("symbol", sorted(binance_brackets()))
def test_binance_table_derives_every_published_cum(symbol):
    rows = binance_brackets()[symbol]
    given = [
        {name: Decimal(row[name]) for name in ("floor", "mmr", "max_leverage")} for row in rows
    ]
    table = BracketTable.build(given)
    assert [b.cum for b in table.brackets] == [Decimal(row["cum"]) for row in rows]
    # The published cum is accepted when given, too.
    BracketTable.build(
        [{**row, "cum": Decimal(source["cum"])} for row, source in zip(given, rows, strict=True)]
    )

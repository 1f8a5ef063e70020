"""The demo data is the published table, and the benchmark runs and says what it measured."""

import re
from decimal import Decimal

import pytest

from margin.engine.demo import INSTRUMENTS
from tests.engine.support import binance_brackets, run_python


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_demo_tables_are_binance_tables(symbol):
    _, table = INSTRUMENTS[symbol]
    published = binance_brackets()[symbol]
    assert [(b.floor, b.mmr, b.max_leverage, b.cum) for b in table.brackets] == [
        (Decimal(r["floor"]), Decimal(r["mmr"]), Decimal(r["max_leverage"]), Decimal(r["cum"]))
        for r in published
    ]


def test_benchmark_prints_its_figures_last():
    run = run_python(
        "-m",
        "margin.bench.engine",
        "--positions",
        "3000",
        "--accounts",
        "600",
        "--repeat",
        "1",
        "--reference-positions",
        "300",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert " 0 figures differ" in lines[-2]
    assert re.fullmatch(
        r"positions=3000 accounts=600 vector_s=[\d.]+ reference_us_per_position=[\d.]+"
        r" speedup=\d+ peak_mb=\d+",
        lines[-1],
    )

"""What the engine tests share: the published vectors, the BTCUSDT perpetual and USDT line the
hand-written accounts are made of, float-versus-Decimal comparisons and running the engine in a
fresh interpreter."""

import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from margin.engine.types import CROSS, ISOLATED, BracketTable, CollateralLine, PositionInput

REPOSITORY = Path(__file__).resolve().parents[2]

# Kept in the repository (tests/data/README.md says where they come from); MARGIN_VECTORS_DIR
# points the tests at another copy.
VECTORS_DIR = Path(os.environ.get("MARGIN_VECTORS_DIR") or REPOSITORY / "tests/data/vectors")
RELATIVE = 1e-9


def quote_cases() -> dict[str, dict]:
    return json.loads((VECTORS_DIR / "quote_cases.json").read_text())


def linked_cases() -> dict[str, dict]:
    """Cases of "prices of one underlying move together", in the quote_cases format."""
    return json.loads((VECTORS_DIR / "linked_cases.json").read_text())


def binance_brackets() -> dict[str, list[dict]]:
    data = json.loads((VECTORS_DIR / "binance_brackets_2024_10.json").read_text())
    return {name: rows for name, rows in data.items() if not name.startswith("_")}


BINANCE_BTC = BracketTable.build(
    [
        {name: Decimal(row[name]) for name in ("floor", "mmr", "max_leverage")}
        for row in binance_brackets()["BTCUSDT"]
    ]
)


def usdt(quantity: str) -> CollateralLine:
    return CollateralLine(asset="USDT", quantity=Decimal(quantity), price=Decimal(1))


def btc_perp(
    position_id: str = "BTCUSDT",
    *,
    side: int = 1,
    quantity: str = "1",
    entry: str = "60000",
    mark: str = "60000",
    isolated_margin: str | None = None,
) -> PositionInput:
    """A BTCUSDT perpetual on Binance's table at leverage 10 (isolated when given a margin)."""
    return PositionInput(
        id=position_id,
        side=side,
        quantity=Decimal(quantity),
        entry_price=Decimal(entry),
        mark_price=Decimal(mark),
        leverage=Decimal(10),
        brackets=BINANCE_BTC,
        margin_mode=CROSS if isolated_margin is None else ISOLATED,
        isolated_margin=None if isolated_margin is None else Decimal(isolated_margin),
        underlying="BTC",
    )


def run_python(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python arguments…` in a fresh interpreter at the repository root, output as text."""
    return subprocess.run(
        [sys.executable, *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        check=False,
    )


def close(
    actual: float | Decimal | None, expected: float | Decimal | None, *, scale: float = 0.0
) -> bool:
    """Equal to a relative 1e-9, with `scale` × 1e-9 as the floor for values near 0; None and
    nan both mean "no such figure" and match each other or a value within that floor of 0."""
    missing_actual = actual is None or (isinstance(actual, float) and math.isnan(actual))
    missing_expected = expected is None or (isinstance(expected, float) and math.isnan(expected))
    if missing_actual and missing_expected:
        return True
    if missing_actual or missing_expected:
        present = float(expected if missing_actual else actual)
        return abs(present) <= RELATIVE * scale
    actual, expected = float(actual), float(expected)
    return abs(actual - expected) <= RELATIVE * max(abs(expected), scale)


# The option row of vectors/OPTIONS.md's example, and a quote request of rows on 50,000 USDT.
OPTIONS_MD_ROW = {
    "id": "BTC-30D-100000-C",
    "kind": "option",
    "underlying": "BTC",
    "option_type": "call",
    "strike": "100000",
    "expiry_days": "30",
    "implied_vol": "0.55",
    "underlying_price": "95000",
    "side": "short",
    "quantity": "2",
    "entry_price": "2900",
}


def option_request(*rows: dict, **account) -> dict:
    return {
        "account": {
            "collateral": [{"asset": "USDT", "quantity": "50000", "price": "1"}],
            "positions": list(rows),
            **account,
        }
    }

"""Demo market data for the benchmark and for anyone who needs a realistic book without a
database: real Binance bracket tables, a few tables scaled from them, haircut tiers, credit
tiers and prices.

BTCUSDT and ETHUSDT are Binance USD-M's public leverage brackets (2024-10 snapshot, the shared
vectors' binance_brackets_2024_10.json; a test holds them equal). The other tables are the
BTCUSDT table with its floors scaled down, as smaller contracts have: demo data, not a venue's.
"""

from decimal import Decimal

from margin.engine.types import BracketTable, CreditTier, HaircutTier

# (floor, mmr, max_leverage); cum is derived.
BINANCE_BTCUSDT_ROWS = (
    ("0", "0.004", "125"),
    ("50000", "0.005", "100"),
    ("600000", "0.0065", "75"),
    ("3000000", "0.01", "50"),
    ("12000000", "0.02", "25"),
    ("70000000", "0.025", "20"),
    ("100000000", "0.05", "10"),
    ("230000000", "0.10", "5"),
    ("480000000", "0.125", "4"),
    ("600000000", "0.15", "3"),
    ("800000000", "0.25", "2"),
    ("1200000000", "0.50", "1"),
)
BINANCE_ETHUSDT_ROWS = (
    ("0", "0.004", "125"),
    ("50000", "0.005", "100"),
    ("600000", "0.0065", "75"),
    ("3000000", "0.01", "50"),
    ("12000000", "0.02", "25"),
    ("50000000", "0.025", "20"),
    ("65000000", "0.05", "10"),
    ("150000000", "0.10", "5"),
    ("320000000", "0.125", "4"),
    ("400000000", "0.15", "3"),
    ("530000000", "0.25", "2"),
    ("800000000", "0.50", "1"),
)


def bracket_table(
    rows: tuple[tuple[str, str, str], ...], floor_scale: Decimal = Decimal(1)
) -> BracketTable:
    """A table from (floor, mmr, max_leverage) rows, floors multiplied by `floor_scale`."""
    return BracketTable.build(
        [
            {
                "floor": Decimal(floor) * floor_scale,
                "mmr": Decimal(mmr),
                "max_leverage": Decimal(leverage),
            }
            for floor, mmr, leverage in rows
        ]
    )


# symbol: (underlying asset, bracket table)
INSTRUMENTS: dict[str, tuple[str, BracketTable]] = {
    "BTCUSDT": ("BTC", bracket_table(BINANCE_BTCUSDT_ROWS)),
    "ETHUSDT": ("ETH", bracket_table(BINANCE_ETHUSDT_ROWS)),
    "SOLUSDT": ("SOL", bracket_table(BINANCE_BTCUSDT_ROWS, Decimal("0.2"))),
    "BNBUSDT": ("BNB", bracket_table(BINANCE_BTCUSDT_ROWS, Decimal("0.1"))),
    "XRPUSDT": ("XRP", bracket_table(BINANCE_BTCUSDT_ROWS, Decimal("0.05"))),
    "DOGEUSDT": ("DOGE", bracket_table(BINANCE_BTCUSDT_ROWS, Decimal("0.02"))),
}


def _tiers(*rows: tuple[str, str]) -> tuple[HaircutTier, ...]:
    return tuple(HaircutTier(floor=Decimal(floor), ratio=Decimal(ratio)) for floor, ratio in rows)


# asset: (USD price, daily volatility of the demo price history, haircut tiers by USD value)
ASSETS: dict[str, tuple[Decimal, float, tuple[HaircutTier, ...]]] = {
    "USDT": (Decimal(1), 0.0005, ()),
    "BTC": (Decimal(64000), 0.03, _tiers(("0", "0.95"), ("1000000", "0.9"), ("5000000", "0.8"))),
    "ETH": (Decimal(3400), 0.04, _tiers(("0", "0.95"), ("1000000", "0.9"), ("5000000", "0.8"))),
    "SOL": (Decimal(150), 0.06, _tiers(("0", "0.9"), ("500000", "0.8"), ("2000000", "0.6"))),
    "BNB": (Decimal(580), 0.035, _tiers(("0", "0.9"), ("500000", "0.8"))),
    "XRP": (Decimal("0.6"), 0.05, _tiers(("0", "0.85"), ("250000", "0.7"))),
    "DOGE": (Decimal("0.15"), 0.07, _tiers(("0", "0.8"), ("250000", "0.6"))),
}

CREDIT_TIERS: tuple[CreditTier, ...] = (
    CreditTier(),
    CreditTier(haircut_scale=Decimal("0.8"), mm_scale=Decimal("0.9")),
    CreditTier(haircut_scale=Decimal("1.2"), mm_scale=Decimal("1.1")),
    CreditTier(haircut_scale=Decimal("1.5"), mm_scale=Decimal("1.25")),
)

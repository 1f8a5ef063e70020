"""The demo reference data `reference_data_ensure` seeds: assets, haircut tiers, instruments,
leverage brackets, credit tiers and opening prices.

The BTCUSDT and ETHUSDT brackets are Binance USD-M's public table (2024-10 snapshot, the
shared vectors' binance_brackets_2024_10.json), kept in margin.engine.demo so the app never
reads shared/ at run time. SOLUSDT and the BTC quarterly future carry illustrative tables of
the same shape. Numbers are strings so that they become exact Decimals.
"""

from datetime import UTC, datetime

from margin.engine.demo import BINANCE_BTCUSDT_ROWS, BINANCE_ETHUSDT_ROWS

SETTLEMENT_ASSET = "USDT"

# symbol: (name, is_settlement, USD price, haircut tiers as (floor USD, ratio))
ASSETS = {
    "USDT": ("Tether USD", True, "1", [("0", "1")]),
    "USDC": ("USD Coin", False, "0.9999", [("0", "1"), ("5000000", "0.99"), ("20000000", "0.95")]),
    "BTC": (
        "Bitcoin",
        False,
        "95000",
        [("0", "0.95"), ("1000000", "0.9"), ("5000000", "0.8"), ("20000000", "0.6")],
    ),
    "ETH": (
        "Ether",
        False,
        "3400",
        [("0", "0.95"), ("1000000", "0.9"), ("3000000", "0.8"), ("10000000", "0.6")],
    ),
    "SOL": (
        "Solana",
        False,
        "230",
        [("0", "0.85"), ("500000", "0.8"), ("2000000", "0.7"), ("5000000", "0.5")],
    ),
}

# Binance USD-M, 2024-10 (floor = notionalFloor USDT, mmr = maintMarginRatio, max leverage):
# one copy, the engine's.
BINANCE_BTCUSDT = list(BINANCE_BTCUSDT_ROWS)
BINANCE_ETHUSDT = list(BINANCE_ETHUSDT_ROWS)
ILLUSTRATIVE_SOLUSDT = [
    ("0", "0.005", "75"),
    ("10000", "0.01", "50"),
    ("100000", "0.025", "20"),
    ("1000000", "0.05", "10"),
    ("5000000", "0.1", "5"),
    ("10000000", "0.125", "4"),
    ("20000000", "0.25", "2"),
    ("50000000", "0.5", "1"),
]
ILLUSTRATIVE_BTC_QUARTERLY = [
    ("0", "0.005", "50"),
    ("400000", "0.01", "25"),
    ("4000000", "0.025", "20"),
    ("20000000", "0.05", "10"),
    ("40000000", "0.1", "5"),
    ("100000000", "0.125", "4"),
    ("200000000", "0.25", "2"),
    ("400000000", "0.5", "1"),
]

# symbol: (kind, underlying, expiry or None, mark price, brackets)
INSTRUMENTS = {
    "BTCUSDT": ("perpetual", "BTC", None, "95010", BINANCE_BTCUSDT),
    "ETHUSDT": ("perpetual", "ETH", None, "3401", BINANCE_ETHUSDT),
    "SOLUSDT": ("perpetual", "SOL", None, "230.05", ILLUSTRATIVE_SOLUSDT),
    "BTCUSDT_261225": (
        "future",
        "BTC",
        datetime(2026, 12, 25, 8, tzinfo=UTC),
        "96200",
        ILLUSTRATIVE_BTC_QUARTERLY,
    ),
}

# code: (name, rank (best first), haircut_scale, mm_scale)
CREDIT_TIERS = {
    "institutional": ("Institutional", 0, "0.6", "0.8"),
    "vip": ("VIP", 1, "0.8", "0.9"),
    "standard": ("Standard", 2, "1", "1"),
    "restricted": ("Restricted", 3, "1.5", "1.25"),
}

# The stress margin's floor of each asset's daily volatility (σ per day): about a calm market's
# day for each coin, so that an asset with no history, or a quiet stretch, is never stressed
# below it. A stablecoin's floor is its de-peg risk.
VOLATILITY_FLOORS = {
    "USDT": "0.001",
    "USDC": "0.001",
    "BTC": "0.02",
    "ETH": "0.025",
    "SOL": "0.035",
    "BNB": "0.03",
    "XRP": "0.04",
    "DOGE": "0.05",
    "ADA": "0.04",
    "AVAX": "0.045",
    "LINK": "0.04",
}
# An asset listed without a floor of its own (fail closed: the highest of the usual floors).
DEFAULT_VOLATILITY_FLOOR = "0.05"

# The first version is in force from well before any demo data.
FIRST_VERSION_EFFECTIVE_AT = datetime(2024, 1, 1, tzinfo=UTC)

# The scale book (`manage.py seed_book`) spreads five positions per account over more markets
# than the demo's four (one position per account and instrument): these join them in a new
# parameter version. Illustrative tables of the venues' shape.
ALTCOIN_HAIRCUTS = [("0", "0.8"), ("250000", "0.7"), ("1000000", "0.5"), ("5000000", "0.3")]
ALTCOIN_BRACKETS = [
    ("0", "0.01", "50"),
    ("25000", "0.02", "25"),
    ("250000", "0.05", "10"),
    ("1000000", "0.1", "5"),
    ("5000000", "0.125", "4"),
    ("10000000", "0.25", "2"),
    ("20000000", "0.5", "1"),
]
BOOK_ASSETS = {
    "BNB": ("BNB", False, "620", ALTCOIN_HAIRCUTS),
    "XRP": ("XRP", False, "1.1", ALTCOIN_HAIRCUTS),
    "DOGE": ("Dogecoin", False, "0.38", ALTCOIN_HAIRCUTS),
    "ADA": ("Cardano", False, "0.95", ALTCOIN_HAIRCUTS),
    "AVAX": ("Avalanche", False, "38", ALTCOIN_HAIRCUTS),
    "LINK": ("Chainlink", False, "18", ALTCOIN_HAIRCUTS),
}
BOOK_INSTRUMENTS = {
    "BNBUSDT": ("perpetual", "BNB", None, "620.2", ALTCOIN_BRACKETS),
    "XRPUSDT": ("perpetual", "XRP", None, "1.1004", ALTCOIN_BRACKETS),
    "DOGEUSDT": ("perpetual", "DOGE", None, "0.38012", ALTCOIN_BRACKETS),
    "ADAUSDT": ("perpetual", "ADA", None, "0.9503", ALTCOIN_BRACKETS),
    "AVAXUSDT": ("perpetual", "AVAX", None, "38.02", ALTCOIN_BRACKETS),
    "LINKUSDT": ("perpetual", "LINK", None, "18.006", ALTCOIN_BRACKETS),
    "ETHUSDT_261225": (
        "future",
        "ETH",
        datetime(2026, 12, 25, 8, tzinfo=UTC),
        "3440",
        ILLUSTRATIVE_BTC_QUARTERLY,
    ),
}

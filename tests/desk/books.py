"""Small random books for holding the desk's simulations to the Decimal reference engine."""

from dataclasses import replace
from decimal import Decimal

import numpy as np

from margin.engine.types import (
    AccountInput,
    BracketTable,
    CollateralLine,
    CreditTier,
    HaircutTier,
    PositionInput,
)

BRACKETS = BracketTable.build(
    [
        {"floor": Decimal(0), "mmr": Decimal("0.004"), "max_leverage": Decimal(125)},
        {"floor": Decimal(50000), "mmr": Decimal("0.005"), "max_leverage": Decimal(100)},
        {"floor": Decimal(600000), "mmr": Decimal("0.0065"), "max_leverage": Decimal(75)},
    ]
)
PRICES = {"USDT": Decimal(1), "BTC": Decimal(60000), "ETH": Decimal(3000)}
INSTRUMENTS = {"BTCUSDT": "BTC", "ETHUSDT": "ETH"}
HAIRCUTS = {
    "USDT": (),
    "BTC": (HaircutTier(Decimal(0), Decimal("0.95")), HaircutTier(Decimal(100000), Decimal("0.9"))),
    "ETH": (HaircutTier(Decimal(0), Decimal("0.9")),),
}
TIERS = (CreditTier(), CreditTier(Decimal("0.5"), Decimal("0.8")), CreditTier(Decimal("1.5")))


def _decimal(value: float, places: int = 6) -> Decimal:
    return Decimal(str(round(float(value), places)))


def random_accounts(n: int, *, seed: int) -> list[AccountInput]:
    """Accounts with USDT/BTC/ETH collateral and leveraged BTC and ETH perps, long and short,
    a few isolated; leverage high enough that a 10-30 % move liquidates some."""
    rng = np.random.default_rng(seed)
    accounts = []
    for _ in range(n):
        collateral = [CollateralLine("USDT", _decimal(rng.uniform(1000, 20000), 2), PRICES["USDT"])]
        if rng.random() < 0.5:
            collateral.append(
                CollateralLine(
                    "BTC", _decimal(rng.uniform(0.01, 3)), PRICES["BTC"], HAIRCUTS["BTC"]
                )
            )
        if rng.random() < 0.3:
            collateral.append(
                CollateralLine(
                    "ETH", _decimal(rng.uniform(0.1, 20)), PRICES["ETH"], HAIRCUTS["ETH"]
                )
            )
        positions = []
        for symbol, asset in INSTRUMENTS.items():
            if rng.random() < 0.3:
                continue
            mark = PRICES[asset]
            isolated = rng.random() < 0.15
            notional = rng.uniform(5000, 150000)
            quantity = _decimal(notional / float(mark))
            positions.append(
                PositionInput(
                    id=symbol,
                    side=int(rng.choice([1, -1])),
                    quantity=quantity,
                    entry_price=_decimal(float(mark) * rng.uniform(0.9, 1.1), 2),
                    mark_price=mark,
                    leverage=Decimal(10),
                    brackets=BRACKETS,
                    margin_mode="isolated" if isolated else "cross",
                    isolated_margin=_decimal(notional * rng.uniform(0.02, 0.2), 2)
                    if isolated
                    else None,
                    underlying=asset,
                )
            )
        accounts.append(
            AccountInput(
                collateral=tuple(collateral),
                positions=tuple(positions),
                credit_tier=TIERS[int(rng.integers(len(TIERS)))],
            )
        )
    return accounts


def at_prices(account: AccountInput, prices: dict[str, Decimal]) -> AccountInput:
    """The account with every holding and mark at the given asset prices."""
    return replace(
        account,
        collateral=tuple(replace(line, price=prices[line.asset]) for line in account.collateral),
        positions=tuple(
            replace(position, mark_price=prices[position.underlying])
            for position in account.positions
        ),
    )

"""Hypothesis strategies for random books: one market (bracket tables, marks, assets with
prices and haircut tiers) and accounts trading in it."""

from decimal import Decimal

from hypothesis import strategies as st

from margin.engine.types import (
    CROSS,
    ISOLATED,
    AccountInput,
    BracketTable,
    CollateralLine,
    CreditTier,
    HaircutTier,
    PositionInput,
)
from tests.engine.support import BINANCE_BTC

# Divisors of every generated floor (multiples of 1000) whose quotient is exact in binary too:
# a quantity from here and the mark floor / quantity put a notional exactly on a floor in both
# Decimal and float.
EXACT_QUANTITIES = (1, 2, 4, 5, 8, 10, 16, 20, 25)


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(low),
        max_value=Decimal(high),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


@st.composite
def bracket_tables(draw) -> BracketTable:
    floors = [0, *sorted(draw(st.sets(st.integers(1, 400), max_size=4)))]
    mmrs = sorted(
        draw(st.lists(decimals("0.001", "0.3", 4), min_size=len(floors), max_size=len(floors)))
    )
    return BracketTable.build(
        [
            {
                "floor": Decimal(floor * 1000),
                "mmr": mmr,
                "max_leverage": Decimal(max(1, 100 // (n + 1))),
            }
            for n, (floor, mmr) in enumerate(zip(floors, mmrs, strict=True))
        ]
    )


@st.composite
def haircut_tiers(draw) -> tuple[HaircutTier, ...]:
    floors = [0, *sorted(draw(st.sets(st.integers(1, 2000), max_size=3)))]
    ratios = sorted(
        draw(st.lists(decimals("0.5", "1", 3), min_size=len(floors), max_size=len(floors))),
        reverse=True,
    )
    return tuple(
        HaircutTier(floor=Decimal(f * 100), ratio=r) for f, r in zip(floors, ratios, strict=True)
    )


@st.composite
def markets(draw) -> dict:
    tables = draw(st.lists(bracket_tables(), min_size=1, max_size=3))
    tables.append(BINANCE_BTC)
    instruments = [
        {
            "id": f"I{n}",
            "brackets": table,
            "mark": draw(decimals("0.5", "90000", 2)),
            "underlying": draw(st.sampled_from(["BTC", "ETH", None])),
        }
        for n, table in enumerate(tables)
    ]
    assets = {"USDT": (Decimal(1), ())}
    for name in ("BTC", "ETH"):
        assets[name] = (draw(decimals("10", "70000", 2)), draw(haircut_tiers()))
    return {"instruments": instruments, "assets": assets}


@st.composite
def positions(draw, market: dict, n: int, *, isolated: bool | None = None) -> PositionInput:
    instrument = draw(st.sampled_from(market["instruments"]))
    table, mark = instrument["brackets"], instrument["mark"]
    if draw(st.integers(0, 5)) == 0:
        # Exactly on a bracket floor: the upper bracket applies.
        quantity = Decimal(draw(st.sampled_from(EXACT_QUANTITIES)))
        floor = draw(st.sampled_from([b.floor for b in table.brackets]))
        mark = floor / quantity if floor > 0 else mark
    else:
        quantity = draw(decimals("0.001", "60", 3))
    if isolated is None:
        isolated = draw(st.integers(0, 4)) == 0
    return PositionInput(
        id=f"P{n}",
        side=draw(st.sampled_from([1, -1])),
        quantity=quantity,
        entry_price=mark
        * (1 + draw(st.one_of(decimals("-0.05", "0.05", 4), decimals("-0.3", "0.3", 3)))),
        mark_price=mark,
        leverage=Decimal(draw(st.integers(1, 20))),
        brackets=table,
        margin_mode=ISOLATED if isolated else CROSS,
        isolated_margin=draw(decimals("1", "20000", 2)) if isolated else None,
        underlying=instrument["underlying"],
    )


@st.composite
def accounts(draw, market: dict, *, isolated_only: bool = False) -> AccountInput:
    lines = []
    for asset in draw(st.lists(st.sampled_from(sorted(market["assets"])), max_size=3, unique=True)):
        price, tiers = market["assets"][asset]
        quantity = draw(st.one_of(decimals("-5", "50", 4), decimals("-20000", "200000", 2)))
        lines.append(
            CollateralLine(asset=asset, quantity=quantity, price=price, haircut_tiers=tiers)
        )
    count = draw(st.integers(0, 4))
    return AccountInput(
        collateral=tuple(lines),
        positions=tuple(
            draw(positions(market, n, isolated=True if isolated_only else None))
            for n in range(count)
        ),
        credit_tier=CreditTier(
            haircut_scale=draw(decimals("0", "2", 2)), mm_scale=draw(decimals("0.5", "1.5", 2))
        ),
    )


@st.composite
def books(draw, *, max_accounts: int = 6) -> tuple[dict, list[AccountInput]]:
    market = draw(markets())
    count = draw(st.integers(1, max_accounts))
    return market, [
        draw(accounts(market, isolated_only=draw(st.integers(0, 5)) == 0)) for _ in range(count)
    ]


@st.composite
def linked_books(draw, *, max_accounts: int = 4) -> tuple[dict, list[AccountInput]]:
    """Books whose accounts hold collateral in the underlying of their positions: every
    instrument moves with BTC, every account holds a BTC line (an asset or a debt), so every
    cross position's prices are solved with the BTC price moving alongside its mark."""
    market = draw(markets())
    for instrument in market["instruments"]:
        instrument["underlying"] = "BTC"
    price, tiers = market["assets"]["BTC"]
    linked = []
    for _ in range(draw(st.integers(1, max_accounts))):
        account = draw(accounts(market))
        btc = CollateralLine(
            asset="BTC",
            quantity=draw(st.one_of(decimals("-2", "30", 4), decimals("0.001", "3", 3))),
            price=price,
            haircut_tiers=tiers,
        )
        others = tuple(line for line in account.collateral if line.asset != "BTC")
        count = draw(st.integers(1, 4))
        linked.append(
            AccountInput(
                collateral=(btc, *others),
                positions=tuple(draw(positions(market, n)) for n in range(count)),
                credit_tier=account.credit_tier,
            )
        )
    return market, linked

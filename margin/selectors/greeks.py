"""The book's exposure by Greek per underlying over every account, for the desk (page and API):
`margin.engine.greeks` over the desk's book and its options at their latest marks."""

from dataclasses import dataclass

from margin.engine.greeks import greek_exposures
from margin.selectors.book import desk_book, held_options


@dataclass(frozen=True)
class GreekRow:
    """One underlying: net delta (units, and USD at its price), of which options and linear
    positions; gamma per unit, vega per vol point and theta per day (USD); option holders."""

    underlying: str
    price: float | None
    net_delta: float
    option_delta: float
    linear_delta: float
    dollar_delta: float | None
    gamma: float
    vega: float
    theta: float
    holders: int


def book_greeks() -> list[GreekRow]:
    """Each underlying an option is held on, by name; none while nobody holds an option."""
    book_slice = desk_book()
    held = held_options(book_slice)
    if held is None:
        return []
    found = greek_exposures(held.options, held.market)
    prices = book_slice.asset_prices
    rows = []
    for key, name in enumerate(found.names):
        if not found.holders[key]:
            continue
        price = float(prices[key]) if key < len(prices) and prices[key] == prices[key] else None
        net = float(found.net_delta[key])
        rows.append(
            GreekRow(
                underlying=name,
                price=price,
                net_delta=net,
                option_delta=float(found.option_delta[key]),
                linear_delta=float(found.linear_delta[key]),
                dollar_delta=None if price is None else net * price,
                gamma=float(found.gamma[key]),
                vega=float(found.vega[key]),
                theta=float(found.theta[key]),
                holders=int(found.holders[key]),
            )
        )
    return sorted(rows, key=lambda row: row.underlying)

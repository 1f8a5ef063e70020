"""What a fill does to a position (one-way mode), the price of a forced fill, what collateral may
leave the cross wallet and the least margin an isolated position is switched with: the Decimal
rules the trader's writes plan with."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Literal

from margin.engine.precision import LEDGER_QUANTUM
from margin.engine.reference import PositionQuote, effective_haircut_ratio
from margin.engine.types import ZERO, HaircutTier

type Side = Literal["buy", "sell"]
SIDES: dict[str, int] = {"buy": 1, "sell": -1}

# Forced fills (liquidation, desk) are priced to this step: a slipped mark has more decimals
# than a price may carry.
FORCED_PRICE_STEP = Decimal("0.00000001")


def ledger_amount(value: Decimal) -> Decimal:
    """To the ledger's quantum (1e-18), as amounts are booked; `margin.numbers.money_text`
    is what people read (to the cent)."""
    return value.quantize(LEDGER_QUANTUM, rounding=ROUND_HALF_EVEN)


def closing_side(quantity: Decimal) -> Side:
    """The side of an order that reduces a position of signed `quantity`."""
    return "sell" if quantity > 0 else "buy"


def slipped_price(mark: Decimal, quantity: Decimal, slippage: Decimal) -> Decimal:
    """A forced reducing fill's price: the mark moved against the position of signed
    `quantity` by `slippage`, to FORCED_PRICE_STEP."""
    price = mark * (1 - slippage) if quantity > 0 else mark * (1 + slippage)
    return price.quantize(FORCED_PRICE_STEP)


@dataclass(frozen=True)
class FillMath:
    """What one fill does to a position: its new size and entry, the PnL it realizes."""

    kind: Literal["open", "increase", "reduce", "close", "flip"]
    quantity: Decimal
    entry_price: Decimal
    realized_pnl: Decimal

    @property
    def adds_risk(self) -> bool:
        return self.kind in ("open", "increase", "flip")


def fill_math(
    *, quantity: Decimal, entry_price: Decimal, delta: Decimal, price: Decimal
) -> FillMath:
    """Binance one-way mode: buying into a long (or selling into a short) averages the entry
    price by size; trading against it realizes side × closed size × (price − entry), and a fill
    larger than the position flips it at the fill price."""
    after = quantity + delta
    if quantity == 0:
        return FillMath("open", after, price, ZERO)
    if (quantity > 0) == (delta > 0):
        entry = ledger_amount((abs(quantity) * entry_price + abs(delta) * price) / abs(after))
        return FillMath("increase", after, entry, ZERO)
    closed = min(abs(quantity), abs(delta))
    realized = ledger_amount((1 if quantity > 0 else -1) * closed * (price - entry_price))
    if after == 0:
        return FillMath("close", after, ZERO, realized)
    if (after > 0) == (quantity > 0):
        return FillMath("reduce", after, entry_price, realized)
    return FillMath("flip", after, price, realized)


def max_withdrawal(
    *,
    balance: Decimal,
    price: Decimal,
    free_collateral: Decimal,
    haircut_tiers: Sequence[HaircutTier],
    haircut_scale: Decimal,
) -> Decimal:
    """The most of one asset that can leave the cross wallet: what it holds (`balance`), and
    no more than its share of the pool's `free_collateral` (collateral + unrealized losses −
    initial requirement; gains stay in). Its haircut tiers are walked from the top, the first
    USD to leave being the ones counted at the highest tier's ratio (Binance's and Bitget's
    tiered collateral ratio). In the asset, rounded down to the ledger's quantum."""
    if balance <= 0 or free_collateral <= 0:
        return ZERO
    free = free_collateral
    value = balance * price
    floors = [tier.floor for tier in haircut_tiers] or [ZERO]
    ratios = [effective_haircut_ratio(tier.ratio, haircut_scale) for tier in haircut_tiers] or [
        Decimal(1)
    ]
    caps = [*floors[1:], None]
    released = ZERO
    for floor, cap, ratio in reversed(list(zip(floors, caps, ratios, strict=True))):
        if value <= floor:
            continue
        width = (value if cap is None else min(value, cap)) - floor
        if ratio == 0 or width * ratio <= free:
            released += width
            free -= width * ratio
        else:
            released += free / ratio
            break
    return min(balance, (released / price).quantize(LEDGER_QUANTUM, rounding=ROUND_DOWN))


CENT = Decimal("0.01")
# The cross → isolated suggestion leaves room for the mark to move this much against the
# position between opening the drawer and confirming: the least the service accepts (initial
# margin plus unrealized loss) is re-checked at the mark of the confirmation.
SWITCH_MARK_ROOM = Decimal("0.01")


def least_isolated_margin(row: PositionQuote) -> Decimal:
    """What the service accepts at least now: the initial margin plus the unrealized loss."""
    return row.initial_margin - min(Decimal(0), row.unrealized_pnl)


def suggested_isolated_margin(row: PositionQuote) -> Decimal:
    """The least now, plus what an adverse move of `SWITCH_MARK_ROOM` adds to it: the loss
    grows by notional × move and the initial margin (notional ÷ leverage) by at most
    notional × move × IM/notional; rounded up to the cent."""
    move = row.notional * SWITCH_MARK_ROOM
    room = move + (move * row.initial_margin / row.notional if row.notional else 0)
    return (least_isolated_margin(row) + room).quantize(CENT, ROUND_UP)

"""Auto-deleveraging ranking (Binance USD-M): profitable positions on the other side of a
bankrupt position are taken first by PnL% × effective leverage.

PnL% = unrealized PnL ÷ the position's margin at entry (entry notional ÷ leverage); effective
leverage = mark notional ÷ the account's margin balance. Losing positions and accounts without
a positive margin balance are never deleveraged.
"""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class AdlCandidate:
    position_id: int
    account_id: int
    side: int
    quantity: Decimal  # > 0
    entry_price: Decimal
    leverage: Decimal
    margin_balance: Decimal


def adl_score(candidate: AdlCandidate, *, mark: Decimal) -> Decimal | None:
    """The ranking score, None when the position may not be deleveraged."""
    pnl = candidate.side * candidate.quantity * (mark - candidate.entry_price)
    entry_margin = candidate.quantity * candidate.entry_price / candidate.leverage
    if pnl <= 0 or candidate.margin_balance <= 0 or entry_margin <= 0:
        return None
    effective_leverage = candidate.quantity * mark / candidate.margin_balance
    return pnl / entry_margin * effective_leverage


def adl_queue(candidates: list[AdlCandidate], *, mark: Decimal) -> list[AdlCandidate]:
    """Candidates in deleveraging order: highest score first, then the position id."""
    scored = [(adl_score(c, mark=mark), c) for c in candidates]
    ranked = sorted(
        ((score, c) for score, c in scored if score is not None),
        key=lambda pair: (-pair[0], pair[1].position_id),
    )
    return [c for _, c in ranked]

"""The price-shock what-if: the account's engine input with its marks (and the collateral of the
same assets) moved by one factor, quoted again by the reference engine. Nothing is stored."""

from dataclasses import dataclass, replace
from decimal import Decimal

from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, quote_account
from margin.engine.types import ONE, AccountInput

MAX_SHOCK_PERCENT = 50


@dataclass(frozen=True)
class Shock:
    """A move of `percent` (−50..+50) of one underlying asset, or of all when `asset` is None."""

    percent: int
    asset: str | None = None

    @property
    def factor(self) -> Decimal:
        return ONE + Decimal(self.percent) / 100


@exact
def shocked_input(account_input: AccountInput, shock: Shock) -> AccountInput:
    """Marks of the positions on the shocked assets, and holdings of those assets, times the
    factor; everything else (a stablecoin wallet, other underlyings) held."""
    underlyings = {position.risk_asset for position in account_input.positions}
    moved = underlyings if shock.asset is None else {shock.asset}
    factor = shock.factor
    return replace(
        account_input,
        positions=tuple(
            replace(position, mark_price=position.mark_price * factor)
            if position.risk_asset in moved
            else position
            for position in account_input.positions
        ),
        collateral=tuple(
            replace(line, price=line.price * factor) if line.asset in moved else line
            for line in account_input.collateral
        ),
    )


def shocked_quote(account_input: AccountInput, shock: Shock) -> tuple[AccountInput, AccountQuote]:
    moved = shocked_input(account_input, shock)
    return moved, quote_account(moved)

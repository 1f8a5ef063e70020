"""The price- and vol-shock what-if: the account's engine input with its marks (and the
collateral of the same assets) moved by one factor, its options repriced at the shocked
forward and implied vol, quoted again by the reference engine. Nothing is stored.

The vol shock is the one the desk's scenarios put on options (`margin.engine.option_stress`,
`HeldOptions.shocked`): a relative shock v reaches each series as OPTIONS.md's grid scales it,
σ' = σ·(1 + v·(30 / max(1, days))^p) (`options.shocked_vol`, the grid's own), never below
`VOL_FLOOR_FACTOR` of σ — so v = +40 % at a price move of +4 % is the grid's third scenario.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from margin.engine.option_stress import VOL_FLOOR_FACTOR
from margin.engine.options import shocked_vol
from margin.engine.precision import exact
from margin.engine.reference import AccountQuote, quote_account
from margin.engine.types import ONE, AccountInput, OptionInput

MAX_SHOCK_PERCENT = 50
MIN_VOL_SHOCK_PERCENT = -50
MAX_VOL_SHOCK_PERCENT = 100


@dataclass(frozen=True)
class Shock:
    """A move of `percent` (−50..+50) of one underlying asset, or of all when `asset` is None,
    and a relative shock of `vol_percent` (−50..+100) to its options' implied vols."""

    percent: int
    asset: str | None = None
    vol_percent: int = 0

    @property
    def factor(self) -> Decimal:
        return ONE + Decimal(self.percent) / 100

    @property
    def vol_shock(self) -> Decimal:
        return Decimal(self.vol_percent) / 100


@exact
def shocked_option_vol(option: OptionInput, vol_shock: Decimal) -> Decimal:
    """σ·max(1 + v·(30 / max(1, days))^p, VOL_FLOOR_FACTOR), as `HeldOptions.shocked`."""
    floor = option.implied_vol * Decimal(str(VOL_FLOOR_FACTOR))
    return max(shocked_vol(option.implied_vol, vol_shock, option.expiry_days), floor)


@exact
def shocked_input(account_input: AccountInput, shock: Shock) -> AccountInput:
    """Marks of the positions on the shocked assets, holdings of those assets and the forward
    of their options times the factor, those options' vols shocked; everything else (a
    stablecoin wallet, other underlyings) held."""
    underlyings = {position.risk_asset for position in account_input.positions}
    underlyings |= {option.underlying for option in account_input.options}
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
        options=tuple(
            replace(
                option,
                underlying_price=option.underlying_price * factor,
                implied_vol=shocked_option_vol(option, shock.vol_shock),
            )
            if option.underlying in moved
            else option
            for option in account_input.options
        ),
    )


def shocked_quote(account_input: AccountInput, shock: Shock) -> tuple[AccountInput, AccountQuote]:
    moved = shocked_input(account_input, shock)
    return moved, quote_account(moved)

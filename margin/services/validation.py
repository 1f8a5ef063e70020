"""The checks of a write's input against the state it is planned on: amounts, assets and
instruments; each refusal an ApplicationError naming the field."""

from decimal import Decimal

from margin.errors import ApplicationError
from margin.selectors.accounts import AccountState
from margin.services.ledger import QUANTUM

# Amounts are NUMERIC(38, 18): at most 20 digits before the point.
LARGEST_AMOUNT = Decimal("1e20")


def amount_parse(value, *, field: str, allow_zero: bool = False) -> Decimal:
    """A positive (or, with `allow_zero`, non-negative) decimal with at most 18 decimal places,
    or an ApplicationError naming `field`."""
    label = field.replace("_", " ").capitalize()
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError):
        raise ApplicationError(
            f"{label} must be a number, got {value!r}.", {field: "not a number"}
        ) from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        qualifier = "zero or positive" if allow_zero else "positive"
        raise ApplicationError(
            f"{label} must be {qualifier}, got {value}.", {field: f"must be {qualifier}"}
        )
    if amount >= LARGEST_AMOUNT or amount != amount.quantize(QUANTUM):
        raise ApplicationError(
            f"{label} must be below 10^20 with at most 18 decimal places, got {value}.",
            {field: "out of range"},
        )
    return amount


def asset_check(state: AccountState, asset: str) -> str:
    if asset not in state.asset_ids:
        raise ApplicationError(f"Unknown asset {asset!r}.", {"asset": "unknown asset"})
    return asset


def instrument_check(state: AccountState, instrument: str) -> str:
    known = instrument in state.terms.brackets or state.is_option(instrument)
    if instrument not in state.instrument_ids or not known:
        raise ApplicationError(
            f"Unknown instrument {instrument!r}.", {"instrument": "unknown instrument"}
        )
    if instrument not in state.marks:
        raise ApplicationError(
            f"{instrument} has no mark price yet.", {"instrument": "no mark price"}
        )
    return instrument

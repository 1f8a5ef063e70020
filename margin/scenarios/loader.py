"""A scenario file read and checked before anything runs: plain values out, or a
`ScenarioError` naming the field (the command turns it into one line and exit status 2).

The format is tests/data/scenarios/README.md. Symbols and assets are checked against the
reference data later, inside the sandbox (`margin.scenarios.runner`), where it exists.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from margin.input_limits import json_loads_bounded

SIDES = ("long", "short")
MARGIN_MODES = ("cross", "isolated")


class ScenarioError(Exception):
    """Bad input: `field` is its JSON path, `message` what is wrong with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PositionSpec:
    symbol: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin_mode: str
    isolated_margin: Decimal | None


@dataclass(frozen=True)
class AccountSpec:
    name: str
    credit_tier: str
    collateral: dict[str, Decimal]
    positions: tuple[PositionSpec, ...]


@dataclass(frozen=True)
class PriceStep:
    at_s: Decimal
    index: dict[str, Decimal] = field(default_factory=dict)
    # asset → venue → price, None when the venue is silent from this step on
    quotes: dict[str, dict[str, Decimal | None]] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    parameters: dict[str, str]
    insurance_fund: dict[str, Decimal]
    accounts: tuple[AccountSpec, ...]
    prices: tuple[PriceStep, ...]


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(path, f"must be an object, got {json.dumps(value)}")
    return value


def _list(value, path: str) -> list:
    if not isinstance(value, list) or not value:
        raise ScenarioError(path, f"must be a non-empty list, got {json.dumps(value)}")
    return value


def _text(value, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(path, f"must be a non-empty string, got {json.dumps(value)}")
    return value


def _decimal(value, path: str, *, positive: bool = True) -> Decimal:
    """A decimal from a JSON string (or an integer); floats are refused (not exact)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ScenarioError(path, f"must be a decimal string, got {json.dumps(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ScenarioError(path, f"must be a decimal string, got {json.dumps(value)}")
    if positive and number <= 0:
        raise ScenarioError(path, f"must be a positive decimal, got {json.dumps(value)}")
    if not positive and number < 0:
        raise ScenarioError(path, f"must be a decimal ≥ 0, got {json.dumps(value)}")
    return number


def _choice(value, path: str, choices: tuple[str, ...], default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if value not in choices:
        raise ScenarioError(path, f"must be one of {', '.join(choices)}, got {json.dumps(value)}")
    return value


def _position(raw, path: str) -> PositionSpec:
    raw = _object(raw, path)
    mode = _choice(raw.get("margin_mode"), f"{path}.margin_mode", MARGIN_MODES, "cross")
    isolated = raw.get("isolated_margin")
    if mode == "isolated" and isolated is None:
        raise ScenarioError(f"{path}.isolated_margin", "is required for an isolated position")
    if mode == "cross" and isolated is not None:
        raise ScenarioError(f"{path}.isolated_margin", "is only for an isolated position")
    return PositionSpec(
        symbol=_text(raw.get("symbol"), f"{path}.symbol"),
        side=_choice(raw.get("side"), f"{path}.side", SIDES),
        quantity=_decimal(raw.get("quantity"), f"{path}.quantity"),
        entry_price=_decimal(raw.get("entry_price"), f"{path}.entry_price"),
        leverage=_decimal(raw.get("leverage", "10"), f"{path}.leverage"),
        margin_mode=mode,
        isolated_margin=None if isolated is None else _decimal(isolated, f"{path}.isolated_margin"),
    )


def _account(raw, path: str) -> AccountSpec:
    raw = _object(raw, path)
    collateral = _object(raw.get("collateral", {}), f"{path}.collateral")
    positions = raw.get("positions", [])
    if not isinstance(positions, list):
        raise ScenarioError(f"{path}.positions", "must be a list")
    return AccountSpec(
        name=_text(raw.get("name"), f"{path}.name"),
        credit_tier=_text(raw.get("credit_tier", "standard"), f"{path}.credit_tier"),
        collateral={
            asset: _decimal(amount, f"{path}.collateral.{asset}")
            for asset, amount in collateral.items()
        },
        positions=tuple(_position(p, f"{path}.positions[{n}]") for n, p in enumerate(positions)),
    )


def _prices(raw, path: str) -> dict[str, Decimal]:
    return {name: _decimal(v, f"{path}.{name}") for name, v in _object(raw, path).items()}


def _step(raw, path: str) -> PriceStep:
    raw = _object(raw, path)
    unknown = set(raw) - {"at_s", "index", "quotes", "marks"}
    if unknown:
        raise ScenarioError(f"{path}.{sorted(unknown)[0]}", "is not a field of a price step")
    quotes = {
        asset: {
            venue: None if price is None else _decimal(price, f"{path}.quotes.{asset}.{venue}")
            for venue, price in _object(venues, f"{path}.quotes.{asset}").items()
        }
        for asset, venues in _object(raw.get("quotes", {}), f"{path}.quotes").items()
    }
    return PriceStep(
        at_s=_decimal(raw.get("at_s"), f"{path}.at_s", positive=False),
        index=_prices(raw.get("index", {}), f"{path}.index"),
        quotes=quotes,
        marks=_prices(raw.get("marks", {}), f"{path}.marks"),
    )


def scenario_parse(text: str) -> Scenario:
    """The scenario of a JSON document, every field checked that needs no database; the
    document within `json_loads_bounded`'s limits (no deeper than 32 levels, no NaN or
    Infinity, no control characters in any name or text)."""
    try:
        raw = json_loads_bounded(text)
    except json.JSONDecodeError as error:
        raise ScenarioError("input", f"not JSON ({error.msg} at line {error.lineno})") from error
    except ValueError as error:  # JsonRefused, or an integer of more digits than Python reads
        raise ScenarioError("input", f"refused: {error}") from error
    raw = _object(raw, "input")
    if "scenario" in raw and "accounts" not in raw:
        raw = _object(raw["scenario"], "scenario")  # a file with its `expect` beside it
    parameters = _object(raw.get("parameters", {}), "parameters")
    for name, value in parameters.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ScenarioError(f"parameters.{name}", f"must be a decimal string, got {value!r}")
    accounts = tuple(
        _account(a, f"accounts[{n}]") for n, a in enumerate(_list(raw.get("accounts"), "accounts"))
    )
    names = [a.name for a in accounts]
    for n, name in enumerate(names):
        if name in names[:n]:
            raise ScenarioError(f"accounts[{n}].name", f"{name!r} is used twice")
    steps = tuple(
        _step(s, f"prices[{n}]") for n, s in enumerate(_list(raw.get("prices"), "prices"))
    )
    for n in range(1, len(steps)):
        if steps[n].at_s <= steps[n - 1].at_s:
            raise ScenarioError(f"prices[{n}].at_s", "must be later than the step before")
    return Scenario(
        parameters={k: str(v) for k, v in parameters.items()},
        insurance_fund={
            asset: _decimal(v, f"insurance_fund.{asset}", positive=False)
            for asset, v in _object(raw.get("insurance_fund", {}), "insurance_fund").items()
        },
        accounts=accounts,
        prices=steps,
    )

"""The quote request and answer of vectors/README.md: JSON-ready dicts in, engine values out.

Shared by the command line and the web API: every refusal is one `EngineInputError` naming the
field path (`account.positions[0].quantity`) and what is wrong with it.

Numbers must be JSON strings holding decimals ("0.8"). A JSON number is refused, integers
included: a float has already lost digits by the time it is parsed, and one rule for every
number is easier to follow than a rule with an exception. Unknown fields are refused too, so a
misspelt optional field (`margin_mod`) is not silently ignored.
"""

import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from margin.engine.errors import EngineInputError
from margin.engine.explain import Step, step_as_dict
from margin.engine.options import GRID, OptionQuote, PortfolioMargin
from margin.engine.precision import engine_context
from margin.engine.reference import AccountQuote, PositionQuote
from margin.engine.types import (
    CROSS,
    ISOLATED,
    LONG,
    MARGIN_MODES,
    MARGIN_SCHEMES,
    OPTION_TYPES,
    SHORT,
    STANDARD,
    AccountInput,
    BracketTable,
    CollateralLine,
    CreditTier,
    HaircutTier,
    OptionInput,
    PositionInput,
)

SIDES = {"long": LONG, "short": SHORT}
OPTION = "option"
LINEAR_KINDS = ("perpetual", "future")
POSITION_KINDS = (*LINEAR_KINDS, OPTION)
# An option row's fields (vectors/OPTIONS.md); the API's schema lists the same.
OPTION_REQUIRED = (
    "id",
    "kind",
    "underlying",
    "option_type",
    "strike",
    "expiry_days",
    "implied_vol",
    "underlying_price",
    "side",
    "quantity",
    "entry_price",
)
SIDE_NAMES = {value: name for name, value in SIDES.items()}
# Plain decimal notation with an optional exponent; no NaN, Infinity, spaces or underscores.
DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# No amount, price or rate of a margin account reaches 10^30; a bigger one is a typo, and one
# like 1e999999 would overflow the arithmetic.
LARGEST_EXPONENT = 30


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"JSON {str(value).lower()}"
    if isinstance(value, int | float):
        return f"JSON number {value}"
    if isinstance(value, str):
        return f'"{value}"'
    return f"JSON {type(value).__name__}"


def _object(
    value: object, path: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict:
    if not isinstance(value, dict):
        raise EngineInputError(path, f"must be an object, got {_describe(value)}")
    for name in value:
        if name not in required and name not in optional:
            raise EngineInputError(f"{path}.{name}", "unknown field")
    for name in required:
        if name not in value:
            raise EngineInputError(f"{path}.{name}", "missing")
    return value


def _list(value: object, path: str) -> list:
    if not isinstance(value, list):
        raise EngineInputError(path, f"must be a list, got {_describe(value)}")
    return value


def _decimal(value: object, path: str) -> Decimal:
    if not isinstance(value, str):
        raise EngineInputError(
            path, f'must be a decimal string such as "12.5", got {_describe(value)}'
        )
    if not DECIMAL_TEXT.fullmatch(value):
        raise EngineInputError(path, f"must be a decimal string, got {_describe(value)}")
    number = Decimal(value)
    if number and number.adjusted() >= LARGEST_EXPONENT:
        raise EngineInputError(
            path, f"must stay below 1e{LARGEST_EXPONENT}, got {_describe(value)}"
        )
    return number


def _optional_decimal(value: object, path: str) -> Decimal | None:
    return None if value is None else _decimal(value, path)


def _text(value: object, path: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise EngineInputError(path, f"must be a non-empty string, got {_describe(value)}")
    if choices is not None and value not in choices:
        raise EngineInputError(path, f"must be one of {', '.join(choices)}, got {_describe(value)}")
    return value


def _build[T](path: str, make: Callable[..., T], **values: object) -> T:
    """Construct an engine value, placing the path of any refusal under `path`."""
    try:
        return make(**values)
    except EngineInputError as error:
        raise error.within(path) from None


def _credit_tier(value: object, path: str) -> CreditTier:
    data = _object(value, path, required=(), optional=("haircut_scale", "mm_scale"))
    scales = {
        name: _decimal(data[name], f"{path}.{name}")
        for name in ("haircut_scale", "mm_scale")
        if name in data
    }
    return _build(path, CreditTier, **scales)


def _collateral_line(value: object, path: str) -> CollateralLine:
    data = _object(
        value, path, required=("asset", "quantity", "price"), optional=("haircut_tiers",)
    )
    tiers = []
    for n, item in enumerate(_list(data.get("haircut_tiers", []), f"{path}.haircut_tiers")):
        tier_path = f"{path}.haircut_tiers[{n}]"
        tier = _object(item, tier_path, required=("floor", "ratio"), optional=())
        tiers.append(
            HaircutTier(
                floor=_decimal(tier["floor"], f"{tier_path}.floor"),
                ratio=_decimal(tier["ratio"], f"{tier_path}.ratio"),
            )
        )
    return _build(
        path,
        CollateralLine,
        asset=_text(data["asset"], f"{path}.asset"),
        quantity=_decimal(data["quantity"], f"{path}.quantity"),
        price=_decimal(data["price"], f"{path}.price"),
        haircut_tiers=tuple(tiers),
    )


def _brackets(value: object, path: str) -> BracketTable:
    rows = []
    for n, item in enumerate(_list(value, path)):
        row_path = f"{path}[{n}]"
        row = _object(
            item, row_path, required=("floor", "mmr", "max_leverage"), optional=("cum", "cap")
        )
        rows.append(
            {
                name: _decimal(row[name], f"{row_path}.{name}")
                for name in ("floor", "mmr", "max_leverage")
            }
            | {
                name: _optional_decimal(row.get(name), f"{row_path}.{name}")
                for name in ("cum", "cap")
            }
        )
    return _build(path, BracketTable.build, rows=rows)


def _option(data: dict, path: str) -> OptionInput:
    """An option row of vectors/OPTIONS.md. Options live in the cross pool only: the grid
    margins them against everything else on their underlying, which an isolated pool of one
    position cannot do."""
    _object(
        data,
        path,
        required=OPTION_REQUIRED,
        optional=("margin_mode",),
    )
    if data.get("margin_mode", CROSS) == ISOLATED:
        raise EngineInputError(
            f"{path}.margin_mode",
            "an option cannot be isolated: options are margined by the portfolio grid of the "
            "cross pool, against every other position on their underlying",
        )
    _text(data.get("margin_mode", CROSS), f"{path}.margin_mode", (CROSS,))
    return _build(
        path,
        OptionInput,
        id=_text(data["id"], f"{path}.id"),
        underlying=_text(data["underlying"], f"{path}.underlying"),
        option_type=_text(data["option_type"], f"{path}.option_type", OPTION_TYPES),
        strike=_decimal(data["strike"], f"{path}.strike"),
        expiry_days=_decimal(data["expiry_days"], f"{path}.expiry_days"),
        implied_vol=_decimal(data["implied_vol"], f"{path}.implied_vol"),
        underlying_price=_decimal(data["underlying_price"], f"{path}.underlying_price"),
        side=SIDES[_text(data["side"], f"{path}.side", tuple(SIDES))],
        quantity=_decimal(data["quantity"], f"{path}.quantity"),
        entry_price=_decimal(data["entry_price"], f"{path}.entry_price"),
    )


def _position(value: object, path: str) -> PositionInput:
    data = _object(
        value,
        path,
        required=("id", "side", "quantity", "entry_price", "mark_price", "leverage", "brackets"),
        optional=("margin_mode", "isolated_margin", "underlying", "kind"),
    )
    _text(data.get("kind", LINEAR_KINDS[0]), f"{path}.kind", POSITION_KINDS)
    position = _build(
        path,
        PositionInput,
        id=_text(data["id"], f"{path}.id"),
        side=SIDES[_text(data["side"], f"{path}.side", tuple(SIDES))],
        quantity=_decimal(data["quantity"], f"{path}.quantity"),
        entry_price=_decimal(data["entry_price"], f"{path}.entry_price"),
        mark_price=_decimal(data["mark_price"], f"{path}.mark_price"),
        leverage=_decimal(data["leverage"], f"{path}.leverage"),
        brackets=_brackets(data["brackets"], f"{path}.brackets"),
        margin_mode=_text(data.get("margin_mode", CROSS), f"{path}.margin_mode", MARGIN_MODES),
        isolated_margin=_optional_decimal(data.get("isolated_margin"), f"{path}.isolated_margin"),
        underlying=None
        if data.get("underlying") is None
        else _text(data["underlying"], f"{path}.underlying"),
    )
    # The quote format names no owner: the account is its own owner, so the bracket is the
    # position's own (`PositionInput.owner_quantity` unset).
    # Binance refuses a leverage above what the position's bracket allows when it is set; later
    # price moves may push a position into a lower-leverage bracket, which is not refused.
    with engine_context():
        index, bracket = position.brackets.bracket_for(position.quantity * position.mark_price)
    if position.leverage > bracket.max_leverage:
        raise EngineInputError(
            f"{path}.leverage",
            f"{position.leverage} is above the max_leverage {bracket.max_leverage} "
            f"of bracket {index}",
        )
    return position


def parse_quote_request(data: object) -> AccountInput:
    """The account of a quote request (`{"account": {...}}`), or one `EngineInputError`."""
    request = _object(data, "request", required=("account",), optional=())
    account = _object(
        request["account"],
        "account",
        required=(),
        optional=("credit_tier", "collateral", "positions", "margin_scheme"),
    )
    credit_tier = (
        _credit_tier(account["credit_tier"], "account.credit_tier")
        if "credit_tier" in account
        else CreditTier()
    )
    collateral = tuple(
        _collateral_line(item, f"account.collateral[{n}]")
        for n, item in enumerate(_list(account.get("collateral", []), "account.collateral"))
    )
    positions, options = [], []
    seen: set[str] = set()
    for n, item in enumerate(_list(account.get("positions", []), "account.positions")):
        path = f"account.positions[{n}]"
        row = _option(item, path) if _is_option(item) else _position(item, path)
        if row.id in seen:
            raise EngineInputError(f"{path}.id", f"repeats the position id {row.id!r}")
        seen.add(row.id)
        (options if isinstance(row, OptionInput) else positions).append(row)
    return _build(
        "account",
        AccountInput,
        collateral=collateral,
        positions=tuple(positions),
        credit_tier=credit_tier,
        options=tuple(options),
        margin_scheme=_text(
            account.get("margin_scheme", STANDARD), "account.margin_scheme", MARGIN_SCHEMES
        ),
    )


def _is_option(item: object) -> bool:
    return isinstance(item, dict) and item.get("kind") == OPTION


def _text_of(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _position_answer(row: PositionQuote) -> dict:
    return {
        "id": row.id,
        "side": SIDE_NAMES[row.side],
        "margin_mode": row.margin_mode,
        "notional": _text_of(row.notional),
        "bracket": row.bracket,
        "mmr": _text_of(row.mmr),
        "cum": _text_of(row.cum),
        "max_leverage": _text_of(row.max_leverage),
        "maintenance_margin": _text_of(row.maintenance_margin),
        "initial_margin": _text_of(row.initial_margin),
        "unrealized_pnl": _text_of(row.unrealized_pnl),
        "liquidation_price": _text_of(row.liquidation_price),
        "liquidation_bracket": row.liquidation_bracket,
        "liquidation_distance": _text_of(row.liquidation_distance),
        "bankruptcy_price": _text_of(row.bankruptcy_price),
        "isolated_margin": _text_of(row.isolated_margin),
        "isolated_margin_ratio": _text_of(row.isolated_margin_ratio),
    }


def _option_answer(row: OptionQuote) -> dict:
    return {
        "id": row.id,
        "kind": OPTION,
        "underlying": row.underlying,
        "side": SIDE_NAMES[row.side],
        "quantity": _text_of(row.quantity),
        "mark_price": _text_of(row.mark_price),
        "unrealized_pnl": _text_of(row.unrealized_pnl),
        "delta": _text_of(row.delta),
        "gamma": _text_of(row.gamma),
        "vega": _text_of(row.vega),
        "theta": _text_of(row.theta),
        "position_delta": _text_of(row.position_delta),
    }


def _portfolio_answer(portfolio: PortfolioMargin) -> dict:
    """The grid's figures per underlying and summed (vectors/OPTIONS.md), with the scenario
    that sets each underlying's scan risk."""
    by_underlying = {risk.underlying: risk for risk in portfolio.underlyings}
    return {
        "scan_risk": {name: _text_of(r.scan_risk) for name, r in by_underlying.items()},
        "min_delta_risk": {name: _text_of(r.min_delta_risk) for name, r in by_underlying.items()},
        "net_delta": {name: _text_of(r.net_delta) for name, r in by_underlying.items()},
        "worst_scenario": {
            name: {
                "number": r.worst_scenario + 1,
                "spot_shock": _text_of(GRID[r.worst_scenario].spot_shock),
                "vol_shock": _text_of(GRID[r.worst_scenario].vol_shock),
                "weight": _text_of(GRID[r.worst_scenario].weight),
                "loss": _text_of(r.losses[r.worst_scenario]),
            }
            for name, r in by_underlying.items()
        },
        "portfolio_initial_margin": _text_of(portfolio.initial_margin),
        "portfolio_maintenance_margin": _text_of(portfolio.maintenance_margin),
    }


def render_quote(quote: AccountQuote, explain: Mapping[str, list[Step]] | None = None) -> dict:
    """The quote answer of vectors/README.md: decimals as JSON strings, null where none; with
    `explain`, every figure's steps under "explain"."""
    answer = {
        "account": {
            "collateral_value": _text_of(quote.collateral_value),
            "unrealized_pnl": _text_of(quote.unrealized_pnl),
            "margin_balance": _text_of(quote.margin_balance),
            "maintenance_margin": _text_of(quote.maintenance_margin),
            "initial_margin": _text_of(quote.initial_margin),
            "margin_ratio": _text_of(quote.margin_ratio),
            "withdrawable": _text_of(quote.withdrawable),
        },
        "positions": [_position_answer(row) for row in quote.positions]
        + [_option_answer(row) for row in quote.options],
    }
    if quote.portfolio is not None:
        answer["account"] |= _portfolio_answer(quote.portfolio)
    if explain is not None:
        answer["explain"] = {
            key: [step_as_dict(step) for step in steps] for key, steps in explain.items()
        }
    return answer

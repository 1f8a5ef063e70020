"""The quote request and answer of /work/shared/vectors/README.md as OpenAPI schemas.

The engine (`margin.engine.request`) is the validator; these only describe the format, so that
clients and the fuzzer know its shape. Every number is a decimal string.
"""

from margin.engine.request import OPTION_REQUIRED

DECIMAL = {
    "type": "string",
    "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$",
    "example": "64000",
}
NULLABLE_DECIMAL = {**DECIMAL, "nullable": True}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


HAIRCUT_TIER = _object({"floor": DECIMAL, "ratio": DECIMAL}, ["floor", "ratio"])
BRACKET = _object(
    {
        "floor": DECIMAL,
        "mmr": DECIMAL,
        "max_leverage": DECIMAL,
        "cum": NULLABLE_DECIMAL,
        "cap": NULLABLE_DECIMAL,
    },
    ["floor", "mmr", "max_leverage"],
)
COLLATERAL_LINE = _object(
    {
        "asset": {"type": "string", "minLength": 1},
        "quantity": DECIMAL,
        "price": DECIMAL,
        "haircut_tiers": {"type": "array", "items": HAIRCUT_TIER},
    },
    ["asset", "quantity", "price"],
)
POSITION = _object(
    {
        "id": {"type": "string", "minLength": 1},
        "side": {"type": "string", "enum": ["long", "short"]},
        "quantity": DECIMAL,
        "entry_price": DECIMAL,
        "mark_price": DECIMAL,
        "leverage": DECIMAL,
        "margin_mode": {"type": "string", "enum": ["cross", "isolated"]},
        "isolated_margin": NULLABLE_DECIMAL,
        "underlying": {"type": "string", "minLength": 1, "nullable": True},
        "brackets": {"type": "array", "items": BRACKET, "minItems": 1},
        "kind": {"type": "string", "enum": ["perpetual", "future"]},
    },
    ["id", "side", "quantity", "entry_price", "mark_price", "leverage", "brackets"],
)
OPTION_POSITION = _object(
    {
        "id": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "enum": ["option"]},
        "underlying": {"type": "string", "minLength": 1},
        "option_type": {"type": "string", "enum": ["call", "put"]},
        "strike": DECIMAL,
        "expiry_days": DECIMAL,
        "implied_vol": DECIMAL,
        "underlying_price": DECIMAL,
        "side": {"type": "string", "enum": ["long", "short"]},
        "quantity": DECIMAL,
        "entry_price": DECIMAL,
        "margin_mode": {
            "type": "string",
            "enum": ["cross"],
            "description": "Options are margined in the cross pool only (the portfolio grid).",
        },
    },
    list(OPTION_REQUIRED),
)
OPTION_POSITION["description"] = (
    "A European, cash-settled option (vectors/OPTIONS.md): Black-76 on the forward "
    "`underlying_price`, T = expiry_days / 365, rate 0."
)
QUOTE_REQUEST = _object(
    {
        "account": _object(
            {
                "credit_tier": _object({"haircut_scale": DECIMAL, "mm_scale": DECIMAL}),
                "collateral": {"type": "array", "items": COLLATERAL_LINE},
                "positions": {
                    "type": "array",
                    "items": {"oneOf": [POSITION, OPTION_POSITION]},
                },
                "margin_scheme": {
                    "type": "string",
                    "enum": ["standard", "portfolio"],
                    "description": "portfolio: margin the account by the options grid even "
                    "without options.",
                },
            }
        )
    },
    ["account"],
)

STEP = {
    "type": "object",
    "properties": {
        "figure": {"type": "string"},
        "formula": {"type": "string"},
        "inputs": {"type": "object", "additionalProperties": DECIMAL},
        "result": NULLABLE_DECIMAL,
        "text": {"type": "string", "example": "MM = notional 51,200.00 × mmr 0.005 − cum 50.00"},
    },
    "required": ["figure", "formula", "inputs", "result", "text"],
}
EXPLANATION = {
    "type": "object",
    "description": "Steps of every figure, keyed `account.<figure>` and `positions.<id>.<figure>`.",
    "additionalProperties": {"type": "array", "items": STEP},
}
ACCOUNT_FIGURES = {
    "type": "object",
    "properties": {
        name: DECIMAL
        for name in (
            "collateral_value",
            "unrealized_pnl",
            "margin_balance",
            "maintenance_margin",
            "initial_margin",
            "withdrawable",
        )
    }
    | {"margin_ratio": NULLABLE_DECIMAL}
    | {
        name: {"type": "object", "additionalProperties": DECIMAL}
        for name in ("scan_risk", "min_delta_risk", "net_delta")
    }
    | {
        "worst_scenario": {
            "type": "object",
            "description": "Per underlying, the grid scenario that sets its scan risk.",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "spot_shock": DECIMAL,
                    "vol_shock": DECIMAL,
                    "weight": DECIMAL,
                    "loss": DECIMAL,
                },
            },
        },
        "portfolio_initial_margin": DECIMAL,
        "portfolio_maintenance_margin": DECIMAL,
    },
    "required": ["collateral_value", "margin_balance", "maintenance_margin", "margin_ratio"],
}
OPTION_FIGURES = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["option"]},
        "underlying": {"type": "string"},
        "side": {"type": "string", "enum": ["long", "short"]},
    }
    | {
        name: DECIMAL
        for name in (
            "quantity",
            "mark_price",
            "unrealized_pnl",
            "delta",
            "gamma",
            "vega",
            "theta",
            "position_delta",
        )
    },
    "required": ["id", "kind", "mark_price", "unrealized_pnl", "delta", "position_delta"],
}
POSITION_FIGURES = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "side": {"type": "string", "enum": ["long", "short"]},
        "margin_mode": {"type": "string", "enum": ["cross", "isolated"]},
        "bracket": {"type": "integer"},
        "liquidation_bracket": {"type": "integer", "nullable": True},
    }
    | {
        name: DECIMAL
        for name in (
            "notional",
            "mmr",
            "cum",
            "max_leverage",
            "maintenance_margin",
            "initial_margin",
            "unrealized_pnl",
        )
    }
    | {
        name: NULLABLE_DECIMAL
        for name in (
            "liquidation_price",
            "liquidation_distance",
            "bankruptcy_price",
            "isolated_margin",
            "isolated_margin_ratio",
        )
    },
    "required": ["id", "bracket", "maintenance_margin", "initial_margin", "liquidation_price"],
}
QUOTE_ANSWER = {
    "type": "object",
    "properties": {
        "account": ACCOUNT_FIGURES,
        "positions": {"type": "array", "items": {"oneOf": [POSITION_FIGURES, OPTION_FIGURES]}},
        "explain": EXPLANATION,
    },
    "required": ["account", "positions"],
}

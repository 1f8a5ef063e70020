"""The quote request and answer of /work/shared/vectors/README.md as OpenAPI schemas.

The engine (`margin.engine.request`) is the validator; these only describe the format, so that
clients and the fuzzer know its shape. Every number is a decimal string.
"""

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
    },
    ["id", "side", "quantity", "entry_price", "mark_price", "leverage", "brackets"],
)
QUOTE_REQUEST = _object(
    {
        "account": _object(
            {
                "credit_tier": _object({"haircut_scale": DECIMAL, "mm_scale": DECIMAL}),
                "collateral": {"type": "array", "items": COLLATERAL_LINE},
                "positions": {"type": "array", "items": POSITION},
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
    | {"margin_ratio": NULLABLE_DECIMAL},
    "required": ["collateral_value", "margin_balance", "maintenance_margin", "margin_ratio"],
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
        "positions": {"type": "array", "items": POSITION_FIGURES},
        "explain": EXPLANATION,
    },
    "required": ["account", "positions"],
}

"""Where each figure of a quote comes from: steps with the formula and the numbers put in.

A step's formula names its inputs in braces (`{notional} × {mmr} − {cum}`); the text rendering
puts each input's name and value in their place:
`MM = notional 92,150.00 × mmr 0.005 − cum 50.00 = 410.75`. Results are the reference engine's
own figures, never recomputed here; the tests evaluate every arithmetic formula with its inputs
and find its result.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from margin.engine.funding import DAMPENER, RateWorking, funding_payment
from margin.engine.options import (
    DAYS_PER_YEAR,
    GRID,
    HEDGED_DELTA_RATE,
    MAINTENANCE_SHARE,
    NET_DELTA_RATE,
    OptionQuote,
    UnderlyingRisk,
    black76_d1_d2,
    linear_value_change,
    normal_cdf,
    normal_pdf,
    option_quote,
    option_value_change,
    years,
)
from margin.engine.precision import exact
from margin.engine.reference import (
    AccountQuote,
    LinkedMove,
    PositionQuote,
    collateral_line_value,
    collateral_slices,
    equity_behind,
    holding_value,
    linked_move,
    linked_scale_root,
    liquidity_keep,
    position_owner_quantity,
    quote_account,
)
from margin.engine.stress import (
    COVARIANCE_LOSS,
    StressModel,
    account_stress,
    asset_exposures,
    decimal_shocks,
)
from margin.engine.types import ONE, ZERO, AccountInput, CollateralLine, OptionInput, PositionInput

# An input's place in a formula. Not str.format: input names are position ids, and an id like
# "1" or "0.5x" would be read as a positional field or an attribute lookup.
INPUT_PLACE = re.compile(r"\{([^{}]+)\}")

# Most money figures are read to the cent; rates like mmr 0.0065 and prices of cheap coins need
# more places, and 50-digit engine results need far fewer than they carry.
MIN_PLACES = 2
MAX_PLACES = 8


@dataclass(frozen=True)
class Step:
    """One step: `figure = formula` with `inputs` put in gives `result` (None: no such figure)."""

    figure: str
    formula: str
    inputs: dict[str, Decimal] = field(default_factory=dict)
    result: Decimal | None = None


def format_number(value: Decimal) -> str:
    """A figure for reading: thousands grouped, 2 to 8 places (small whole numbers bare)."""
    if value == 0:
        return "0"
    if value == value.to_integral_value() and abs(value) < 10:
        return f"{value:.0f}"
    needed = max(0, -value.normalize().as_tuple().exponent)
    places = min(MAX_PLACES, max(MIN_PLACES, needed))
    return f"{value:,.{places}f}"


def fill_formula(formula: str, values: dict[str, str]) -> str:
    """The formula with each `{input}` replaced by its text in `values`."""
    return INPUT_PLACE.sub(lambda place: values[place.group(1)], formula)


def render_step(step: Step) -> str:
    """`figure = formula with values = result`, on one line."""
    shown = {
        name: f"{name.replace('_', ' ')} {format_number(value)}"
        for name, value in step.inputs.items()
    }
    result = "none" if step.result is None else format_number(step.result)
    return f"{step.figure} = {fill_formula(step.formula, shown)} = {result}"


def step_as_dict(step: Step) -> dict:
    """A JSON-ready step: decimals as strings, with its text rendering."""
    return {
        "figure": step.figure,
        "formula": step.formula.replace("{", "").replace("}", ""),
        "inputs": {name: format(value, "f") for name, value in step.inputs.items()},
        "result": None if step.result is None else format(step.result, "f"),
        "text": render_step(step),
    }


def _sum_step(figure: str, terms: dict[str, Decimal], result: Decimal) -> Step:
    if not terms:
        return Step(figure, "0 (nothing to add)", {}, result)
    return Step(figure, " + ".join(f"{{{name}}}" for name in terms), terms, result)


def _collateral_steps(account: AccountInput, quote: AccountQuote) -> list[Step]:
    haircut_scale = account.credit_tier.haircut_scale
    steps: list[Step] = []
    line_values: dict[str, Decimal] = {}
    for n, line in enumerate(account.collateral):
        name = (
            line.asset
            if all(other.asset != line.asset for other in account.collateral[:n])
            else f"{line.asset}_{n}"
        )
        usd_value = holding_value(line)
        steps.append(
            Step(
                f"{name} value",
                "{quantity} × {price}",
                {"quantity": line.quantity, "price": line.price},
                usd_value,
            )
        )
        if usd_value < 0:
            steps.append(
                Step(
                    f"{name} collateral",
                    "{value} (a liability counts in full)",
                    {"value": usd_value},
                    usd_value,
                )
            )
            line_values[name] = usd_value
            continue
        slices = collateral_slices(line, haircut_scale)
        if haircut_scale != ONE:
            for tier, piece in zip(line.haircut_tiers, slices, strict=False):
                steps.append(
                    Step(
                        f"{name} ratio from {format_number(piece.floor)}",
                        "max(0, 1 − {haircut_scale} × (1 − {tier_ratio}))",
                        {"haircut_scale": haircut_scale, "tier_ratio": tier.ratio},
                        piece.ratio,
                    )
                )
        for piece in slices:
            top = "up" if piece.cap is None else f"to {format_number(piece.cap)}"
            steps.append(
                Step(
                    f"{name} slice from {format_number(piece.floor)} {top}",
                    "{amount} × {ratio}",
                    {"amount": piece.amount, "ratio": piece.ratio},
                    piece.value,
                )
            )
        line_values[name] = collateral_line_value(line, haircut_scale)
        slice_values = {f"slice_{k + 1}": p.value for k, p in enumerate(slices)}
        keep = liquidity_keep(line)
        if keep == ONE:
            steps.append(_sum_step(f"{name} collateral", slice_values, line_values[name]))
            continue
        tiered = sum(slice_values.values(), Decimal(0))
        steps.append(_sum_step(f"{name} tiered", slice_values, tiered))
        steps.extend(_liquidity_haircut_steps(name, line, ONE - keep))
        steps.append(
            Step(
                f"{name} collateral",
                "{tiered} × (1 − {liquidity_haircut})",
                {"tiered": tiered, "liquidity_haircut": ONE - keep},
                line_values[name],
            )
        )
    steps.append(_sum_step("collateral value", line_values, quote.collateral_value))
    return steps


def _liquidity_haircut_steps(name: str, line: CollateralLine, haircut: Decimal) -> list[Step]:
    """Square-root impact of selling what the owner holds of the asset into its market."""
    market = line.liquidity
    owner_value = (line.owner_quantity or line.quantity) * line.price
    root = (owner_value / market.depth).sqrt()
    return [
        Step(
            f"{name} owner holding",
            "{owner_quantity} × {price}",
            {"owner_quantity": line.owner_quantity or line.quantity, "price": line.price},
            owner_value,
        ),
        Step(
            f"{name} depth ratio root",
            "square root of {owner_value} ÷ {depth} (USD over the close-out horizon)",
            {"owner_value": owner_value, "depth": market.depth},
            root,
        ),
        Step(
            f"{name} liquidity haircut",
            "min(1, {coefficient} × {volatility} × {root})",
            {"coefficient": market.coefficient, "volatility": market.volatility, "root": root},
            haircut,
        ),
    ]


def _liquidity_addon_steps(position: PositionInput, row: PositionQuote) -> list[Step]:
    """The position's share of the square-root cost of closing what its owner holds."""
    market = position.liquidity
    owner_notional = row.owner_notional
    root = (owner_notional / market.depth).sqrt()
    return [
        _owner_notional_step(position, row),
        Step(
            "depth ratio root",
            "square root of {owner_notional} ÷ {depth} (USD over the close-out horizon)",
            {"owner_notional": owner_notional, "depth": market.depth},
            root,
        ),
        Step(
            "liquidity add-on",
            "{notional} × {coefficient} × {volatility} × {root}",
            {
                "notional": row.notional,
                "coefficient": market.coefficient,
                "volatility": market.volatility,
                "root": root,
            },
            row.liquidity_addon,
        ),
    ]


def _account_steps(account: AccountInput, quote: AccountQuote) -> dict[str, list[Step]]:
    cross = [
        (p, q) for p, q in zip(account.positions, quote.positions, strict=True) if not p.is_isolated
    ]
    ratio_formula = "{maintenance_margin} ÷ {margin_balance}"
    if quote.margin_ratio is None:
        ratio_formula += " (none: the margin balance is not positive)"
    return {
        "account.collateral_value": _collateral_steps(account, quote),
        "account.unrealized_pnl": [
            _sum_step(
                "cross uPnL", {p.id: q.unrealized_pnl for p, q in cross}, quote.unrealized_pnl
            )
        ],
        "account.margin_balance": [
            Step(
                "margin balance",
                "{collateral_value} + {unrealized_pnl}",
                {
                    "collateral_value": quote.collateral_value,
                    "unrealized_pnl": quote.unrealized_pnl,
                },
                quote.margin_balance,
            )
        ],
        "account.maintenance_margin": [
            _sum_step(
                "cross MM", {p.id: q.maintenance_margin for p, q in cross}, quote.maintenance_margin
            )
        ],
        "account.initial_margin": [
            _sum_step("cross IM", {p.id: q.initial_margin for p, q in cross}, quote.initial_margin)
        ],
        "account.margin_ratio": [
            Step(
                "margin ratio",
                ratio_formula,
                {
                    "maintenance_margin": quote.maintenance_margin,
                    "margin_balance": quote.margin_balance,
                },
                quote.margin_ratio,
            )
        ],
        "account.withdrawable": [
            Step(
                "withdrawable",
                "max(0, {collateral_value} + min(0, {unrealized_pnl}) − {initial_margin})",
                {
                    "collateral_value": quote.collateral_value,
                    "unrealized_pnl": quote.unrealized_pnl,
                    "initial_margin": quote.initial_margin,
                },
                quote.withdrawable,
            )
        ],
    }


def _owner_notional_step(position: PositionInput, row: PositionQuote) -> Step:
    owner_quantity = position_owner_quantity(position)
    return Step(
        "owner notional",
        "{owner_quantity} × {mark_price} (the owner's, over all their accounts)",
        {"owner_quantity": owner_quantity, "mark_price": position.mark_price},
        row.owner_notional,
    )


def _held_elsewhere(position: PositionInput) -> bool:
    """The owner holds the instrument in other accounts too: the bracket is the owner's."""
    return position_owner_quantity(position) != position.quantity


def _bracket_steps(position: PositionInput, row: PositionQuote) -> list[Step]:
    """The bracket of the owner's notional (the position's own when the owner holds the
    instrument nowhere else), its cum, and the position's share of the owner's holding."""
    brackets = position.brackets.brackets
    current = brackets[row.bracket - 1]
    upper = (
        f" < {format_number(brackets[row.bracket].floor)}" if row.bracket < len(brackets) else ""
    )
    steps = []
    if _held_elsewhere(position):
        steps.append(_owner_notional_step(position, row))
        steps.append(
            Step(
                "owner share",
                "{quantity} ÷ {owner_quantity}",
                {
                    "quantity": position.quantity,
                    "owner_quantity": position_owner_quantity(position),
                },
                row.owner_share,
            )
        )
        steps.append(
            Step(
                "bracket",
                f"bracket {row.bracket}: {{floor}} ≤ {{owner_notional}}{upper}",
                {"floor": current.floor, "owner_notional": row.owner_notional},
                Decimal(row.bracket),
            )
        )
    else:
        steps.append(
            Step(
                "bracket",
                f"bracket {row.bracket}: {{floor}} ≤ {{notional}}{upper}",
                {"floor": current.floor, "notional": row.notional},
                Decimal(row.bracket),
            )
        )
    if row.bracket > 1:
        previous = brackets[row.bracket - 2]
        steps.append(
            Step(
                "cum",
                "{previous_cum} + {floor} × ({mmr} − {previous_mmr})",
                {
                    "previous_cum": previous.cum,
                    "floor": current.floor,
                    "mmr": current.mmr,
                    "previous_mmr": previous.mmr,
                },
                current.cum,
            )
        )
    return steps


def _linked_price_steps(
    move: LinkedMove, position: PositionInput, price: Decimal | None, *, with_maintenance: bool
) -> list[Step]:
    """A price solved with every price of the underlying moving by one factor s."""
    figure = "liquidation price" if with_maintenance else "bankruptcy price"
    moved = ", ".join(
        [f"the mark of {p.id}" for p in move.positions]
        + [f"the price of {line.asset} collateral" for line in move.lines]
    )
    steps = [
        Step(
            "linked prices",
            f"{moved} move together by one factor s (one underlying, {position.underlying})",
        )
    ]
    if price is None:
        target = "maintenance margin" if with_maintenance else "0"
        steps.append(Step(figure, f"no positive price: no factor s brings equity to {target}"))
        return steps
    scale = linked_scale_root(move, with_maintenance=with_maintenance)
    equity = move.equity(scale)
    steps.append(
        Step(
            "equity at s",
            "{margin_balance} + {change_of_linked_prices}",
            {
                "margin_balance": move.margin_balance,
                "change_of_linked_prices": equity - move.margin_balance,
            },
            equity,
        )
    )
    if with_maintenance:
        requirement = move.maintenance(scale)
        steps.append(
            Step(
                "MM at s",
                "{maintenance_margin} + {change_in_linked_brackets}",
                {
                    "maintenance_margin": move.cross_maintenance,
                    "change_in_linked_brackets": requirement - move.cross_maintenance,
                },
                requirement,
            )
        )
    steps.append(
        Step(figure, "{mark_price} × {s}", {"mark_price": position.mark_price, "s": scale}, price)
    )
    return steps


def _liquidation_steps(
    account: AccountInput, quote: AccountQuote, position: PositionInput, row: PositionQuote
) -> tuple[list[Step], list[Step]]:
    move = linked_move(account, position)
    if move is not None:
        return (
            _linked_price_steps(move, position, row.liquidation_price, with_maintenance=True),
            _linked_price_steps(move, position, row.bankruptcy_price, with_maintenance=False),
        )
    mm_scale = account.credit_tier.mm_scale
    other_equity, other_requirement = equity_behind(
        position,
        unrealized_pnl=row.unrealized_pnl,
        maintenance_margin=row.maintenance_margin,
        margin_balance=quote.margin_balance,
        cross_maintenance=quote.maintenance_margin,
    )
    if position.is_isolated:
        context = [
            Step(
                "other equity",
                "{isolated_margin} (isolated: the position stands alone)",
                {"isolated_margin": other_equity},
                other_equity,
            ),
        ]
    else:
        context = [
            Step(
                "other equity",
                "{margin_balance} − {own_unrealized_pnl}",
                {"margin_balance": quote.margin_balance, "own_unrealized_pnl": row.unrealized_pnl},
                other_equity,
            ),
            Step(
                "other MM",
                "{maintenance_margin} − {own_maintenance_margin}",
                {
                    "maintenance_margin": quote.maintenance_margin,
                    "own_maintenance_margin": row.maintenance_margin,
                },
                other_requirement,
            ),
        ]
    side = Decimal(position.side)
    bankruptcy_context = list(context)
    if row.liquidity_addon:
        held = other_requirement + row.liquidity_addon
        context.append(
            Step(
                "requirement besides the bracket MM",
                "{other_mm} + {liquidity_addon} (the add-on held at its value at the mark)",
                {"other_mm": other_requirement, "liquidity_addon": row.liquidity_addon},
                held,
            )
        )
        other_requirement = held
    bankruptcy = [
        *bankruptcy_context,
        Step(
            "bankruptcy price",
            "{entry_price} − {other_equity} ÷ ({side} × {quantity})",
            {
                "entry_price": position.entry_price,
                "other_equity": other_equity,
                "side": side,
                "quantity": position.quantity,
            },
            row.bankruptcy_price,
        ),
    ]
    if row.liquidation_price is None:
        reason = (
            "equity covers maintenance margin down to a price of 0"
            if position.side > 0
            else "equity is short of maintenance margin even at a price of 0"
        )
        return [
            *context,
            Step("liquidation price", f"no positive price: {reason}", {}, None),
        ], bankruptcy
    bracket = position.brackets.brackets[row.liquidation_bracket - 1]
    liquidation = list(context)
    if row.liquidation_bracket != row.bracket:
        liquidation.append(
            Step(
                "bracket at liquidation",
                f"the (owner's) notional at the price lands in bracket "
                f"{row.liquidation_bracket} (from {{floor}}), not the mark's {row.bracket}: "
                "re-solved with its mmr and cum",
                {"floor": bracket.floor},
                Decimal(row.liquidation_bracket),
            )
        )
    cum = "{cum} × {owner_share}" if _held_elsewhere(position) else "{cum}"
    liquidation.append(
        Step(
            "liquidation price",
            f"({{other_mm}} − {{mm_scale}} × {cum} − {{other_equity}} + {{side}} × {{quantity}}"
            " × {entry_price}) ÷ ({quantity} × ({side} − {mm_scale} × {mmr}))",
            {
                "other_mm": other_requirement,
                "mm_scale": mm_scale,
                "cum": bracket.cum,
                "owner_share": row.owner_share,
                "other_equity": other_equity,
                "side": side,
                "quantity": position.quantity,
                "entry_price": position.entry_price,
                "mmr": bracket.mmr,
            },
            row.liquidation_price,
        )
    )
    return liquidation, bankruptcy


def _position_steps(
    account: AccountInput, quote: AccountQuote, position: PositionInput, row: PositionQuote
) -> dict[str, list[Step]]:
    key = f"positions.{position.id}"
    mm_scale = account.credit_tier.mm_scale
    mm_inputs = {"notional": row.notional, "mmr": row.mmr, "cum": row.cum}
    mm_formula = "{notional} × {mmr} − {cum}"
    if _held_elsewhere(position):
        # The position's share of the owner's bracket MM: share × (owner notional × mmr − cum).
        mm_inputs["owner_share"] = row.owner_share
        mm_formula += " × {owner_share}"
    if mm_scale != ONE:
        mm_inputs["mm_scale"] = mm_scale
        mm_formula = f"({mm_formula}) × {{mm_scale}}"
    im_inputs = {"notional": row.notional, "leverage": position.leverage}
    im_formula = "{notional} ÷ {leverage}"
    if position.liquidity is not None:
        mm_inputs["liquidity_addon"] = im_inputs["liquidity_addon"] = row.liquidity_addon
        mm_formula += " + {liquidity_addon}"
        im_formula += " + {liquidity_addon}"
    liquidation, bankruptcy = _liquidation_steps(account, quote, position, row)
    steps = {
        f"{key}.notional": [
            Step(
                "notional",
                "{quantity} × {mark_price}",
                {"quantity": position.quantity, "mark_price": position.mark_price},
                row.notional,
            )
        ],
        f"{key}.bracket": _bracket_steps(position, row),
        f"{key}.maintenance_margin": [Step("MM", mm_formula, mm_inputs, row.maintenance_margin)],
        f"{key}.initial_margin": [Step("IM", im_formula, im_inputs, row.initial_margin)],
        f"{key}.unrealized_pnl": [
            Step(
                "uPnL",
                "{side} × {quantity} × ({mark_price} − {entry_price})",
                {
                    "side": Decimal(position.side),
                    "quantity": position.quantity,
                    "mark_price": position.mark_price,
                    "entry_price": position.entry_price,
                },
                row.unrealized_pnl,
            )
        ],
        f"{key}.liquidation_price": liquidation,
        f"{key}.bankruptcy_price": bankruptcy,
    }
    if position.liquidity is not None:
        steps[f"{key}.liquidity_addon"] = _liquidity_addon_steps(position, row)
    if row.liquidation_distance is not None:
        steps[f"{key}.liquidation_distance"] = [
            Step(
                "distance to liquidation",
                "{side} × ({mark_price} − {liquidation_price}) ÷ {mark_price}",
                {
                    "side": Decimal(position.side),
                    "mark_price": position.mark_price,
                    "liquidation_price": row.liquidation_price,
                },
                row.liquidation_distance,
            )
        ]
    if position.is_isolated:
        steps[f"{key}.isolated_margin_ratio"] = [
            Step(
                "isolated margin ratio",
                "{maintenance_margin} ÷ ({isolated_margin} + {unrealized_pnl})",
                {
                    "maintenance_margin": row.maintenance_margin,
                    "isolated_margin": position.isolated_margin,
                    "unrealized_pnl": row.unrealized_pnl,
                },
                row.isolated_margin_ratio,
            )
        ]
    return steps


@exact
def explain_account(
    account: AccountInput,
    quote: AccountQuote | None = None,
    *,
    position_names: Mapping[str, str] | None = None,
) -> dict[str, list[Step]]:
    """Every figure of the account's quote as steps, keyed `account.<figure>`,
    `positions.<id>.<figure>` and, on the portfolio grid, `grid.<underlying>.<figure>`. Pass
    the quote when you already have it; `position_names` names positions by id (their
    symbols) where the grid's steps add them up."""
    account = account.in_settlement_coin()
    if quote is None:
        quote = quote_account(account)
    steps = _account_steps(account, quote)
    for position, row in zip(account.positions, quote.positions, strict=True):
        steps.update(_position_steps(account, quote, position, row))
    if quote.portfolio is not None:
        steps.update(_portfolio_steps(account, quote, position_names or {}))
    return steps


@exact
def explain_stress(
    account: AccountInput,
    model: StressModel,
    quote: AccountQuote | None = None,
    *,
    position_names: Mapping[str, str] | None = None,
) -> dict[str, list[Step]]:
    """The stress loss and the risk requirement as steps (`account.stress_loss`,
    `account.risk_requirement`): the exposure to each asset, the closed-form covariance loss,
    the worst named scenario, the larger of them, and max(MM, stress loss). The figures are
    `account_stress`'s own. `position_names` names positions by id (their symbols) in the
    steps."""
    quote = quote_account(account) if quote is None else quote
    stress = account_stress(account, model, quote=quote)
    exposures = asset_exposures(account, quote)
    steps = [
        _exposure_step(account, quote, asset, exposure, position_names or {})
        for asset, exposure in exposures.items()
    ]
    reach = Decimal(model.k) * Decimal(model.horizon_days).sqrt()
    steps.append(
        Step(
            f"covariance loss ({format_number(Decimal(model.k))}σ over "
            f"{format_number(Decimal(model.horizon_days))} day(s), hedges credited)",
            "{k_sigma_reach} × {portfolio_sigma}",
            {
                "k_sigma_reach": reach,
                "portfolio_sigma": stress.covariance_loss / reach,
            },
            stress.covariance_loss,
        )
    )
    shocks = decimal_shocks(model.scenarios)
    worst_named = max(
        range(len(stress.scenario_losses)), key=stress.scenario_losses.__getitem__, default=None
    )
    terms = {"covariance_loss": stress.covariance_loss}
    if worst_named is not None:
        name = model.scenarios.names[worst_named]
        moves = {a: m for a, m in shocks[worst_named].items() if a in exposures and m}
        loss_terms = {f"{asset}_loss": -exposures[asset] * move for asset, move in moves.items()}
        shown = ", ".join(
            f"{asset} {move * 100:+.1f}%".replace("-", "−") for asset, move in moves.items()
        )
        steps.append(
            Step(
                f"worst named scenario ({name}: {shown})",
                " + ".join(f"{{{term}}}" for term in loss_terms) or "0 (no exposure moves)",
                loss_terms,
                stress.scenario_losses[worst_named],
            )
        )
        terms["worst_scenario_loss"] = stress.scenario_losses[worst_named]
    binds = (
        "nothing loses"
        if stress.worst_scenario is None
        else "the covariance loss binds"
        if stress.worst_scenario == COVARIANCE_LOSS
        else "a named scenario binds"
    )
    loss_step = Step(
        f"stress loss ({binds})",
        "max(0, " + ", ".join(f"{{{term}}}" for term in terms) + ")",
        terms,
        stress.worst_loss,
    )
    steps.append(loss_step)
    requirement = Step(
        "risk requirement ("
        + ("the stress loss binds" if stress.worst_loss > quote.maintenance_margin else "MM binds")
        + ")",
        "max({maintenance_margin}, {stress_loss})",
        {"maintenance_margin": quote.maintenance_margin, "stress_loss": stress.worst_loss},
        stress.risk_requirement,
    )
    return {"account.stress_loss": steps, "account.risk_requirement": [loss_step, requirement]}


def _exposure_step(
    account: AccountInput,
    quote: AccountQuote,
    asset: str,
    exposure: Decimal,
    position_names: Mapping[str, str],
) -> Step:
    """An asset's USD exposure: side × notional of each cross position on it, plus the
    collateral value of its holdings."""
    terms: dict[str, Decimal] = {}
    for position, row in zip(account.positions, quote.positions, strict=True):
        if not position.is_isolated and position.risk_asset == asset:
            name = position_names.get(position.id, f"position_{position.id}")
            terms[f"{name}_signed_notional"] = position.side * row.notional
    scale = account.credit_tier.haircut_scale
    lines = [line for line in account.collateral if line.asset == asset]
    for n, line in enumerate(lines):
        name = f"{asset}_collateral" if len(lines) == 1 else f"{asset}_collateral_{n + 1}"
        terms[name] = collateral_line_value(line, scale)
    return _sum_step(f"exposure to {asset}", terms, exposure)


@exact
def explain_option(option: OptionInput, prefix: str) -> dict[str, list[Step]]:
    """A series' mark and Greeks per contract (`option_quote`'s), keyed `<prefix>.<figure>`:
    a row of the chain, held or not."""
    return _option_price_steps(option, option_quote(option), prefix)


def _option_steps(option: OptionInput, row: OptionQuote) -> dict[str, list[Step]]:
    """A held option's mark and Greeks with their inputs, and its uPnL."""
    prefix = f"positions.{option.id}"
    steps = _option_price_steps(option, row, prefix)
    pnl_step = Step(
        "uPnL",
        "{side} × {quantity} × ({mark} − {entry})",
        {
            "side": Decimal(option.side),
            "quantity": option.quantity,
            "mark": row.mark_price,
            "entry": option.entry_price,
        },
        row.unrealized_pnl,
    )
    return steps | {f"{prefix}.unrealized_pnl": [steps[f"{prefix}.mark_price"][-1], pnl_step]}


def _option_price_steps(
    option: OptionInput, row: OptionQuote, prefix: str
) -> dict[str, list[Step]]:
    """An option's mark by Black-76 with its inputs (F, K, T, σ, rate 0), d1, d2 and their
    normal probabilities, and each Greek per contract. Every result is the engine's own
    (`margin.engine.options.black76`, through the quote's row)."""
    forward, strike, vol = option.underlying_price, option.strike, option.implied_vol
    d1, d2 = black76_d1_d2(forward, strike, vol, option.expiry_days)
    time = years(option.expiry_days)
    root_t = time.sqrt()
    time_step = Step(
        "T (years)",
        "{expiry_days} ÷ {days_per_year}",
        {"expiry_days": option.expiry_days, "days_per_year": DAYS_PER_YEAR},
        time,
    )
    market_steps = [
        Step("F (forward: the underlying's mark)", "{F}", {"F": forward}, forward),
        Step("K (strike)", "{K}", {"K": strike}, strike),
        time_step,
        Step("σ (the surface's implied vol at this expiry and strike)", "{σ}", {"σ": vol}, vol),
        Step("r (Black-76 on the forward: rate 0, as crypto option venues quote)", "0", {}, ZERO),
    ]
    inputs = {"F": forward, "K": strike, "σ": vol, "T": time}
    d1_step = Step("d1", "(ln(F/K) + σ²T/2) / (σ√T)", inputs, d1)
    d2_step = Step("d2", "{d1} − {σ√T}", {"d1": d1, "σ√T": d1 - d2}, d2)
    probability_steps = [
        Step("N(d1)", "the standard normal distribution at {d1}", {"d1": d1}, normal_cdf(d1)),
        Step("N(d2)", "the standard normal distribution at {d2}", {"d2": d2}, normal_cdf(d2)),
    ]
    if option.is_call:
        value_step = Step(
            "mark (Black-76 call)",
            "{F} × {N(d1)} − {K} × {N(d2)}",
            {"F": forward, "N(d1)": normal_cdf(d1), "K": strike, "N(d2)": normal_cdf(d2)},
            row.mark_price,
        )
        delta_step = Step("delta (call)", "{N(d1)}", {"N(d1)": normal_cdf(d1)}, row.delta)
    else:
        value_step = Step(
            "mark (Black-76 put)",
            "{K} × {N(−d2)} − {F} × {N(−d1)}",
            {"K": strike, "N(−d2)": normal_cdf(-d2), "F": forward, "N(−d1)": normal_cdf(-d1)},
            row.mark_price,
        )
        delta_step = Step("delta (put)", "−{N(−d1)}", {"N(−d1)": normal_cdf(-d1)}, row.delta)
    density = normal_pdf(d1)
    density_step = Step("n(d1)", "the standard normal density at {d1}", {"d1": d1}, density)
    root_step = Step("√T", "square root of {T}", {"T": time}, root_t)
    gamma_step = Step(
        "gamma (per contract)",
        "{n(d1)} ÷ ({F} × {σ} × {√T})",
        {"n(d1)": density, "F": forward, "σ": vol, "√T": root_t},
        row.gamma,
    )
    vega_step = Step(
        "vega (per contract, per vol point)",
        "{F} × {n(d1)} × {√T} ÷ 100",
        {"F": forward, "n(d1)": density, "√T": root_t},
        row.vega,
    )
    theta_step = Step(
        "theta (per contract, per day)",
        "−{F} × {n(d1)} × {σ} ÷ (2 × {√T}) ÷ {days_per_year}",
        {"F": forward, "n(d1)": density, "σ": vol, "√T": root_t, "days_per_year": DAYS_PER_YEAR},
        row.theta,
    )
    mark_steps = [*market_steps, d1_step, d2_step, *probability_steps, value_step]
    slope = [*market_steps, d1_step, density_step, root_step]
    return {
        f"{prefix}.mark_price": mark_steps,
        f"{prefix}.delta": [*market_steps, d1_step, delta_step],
        f"{prefix}.gamma": [*slope, gamma_step],
        f"{prefix}.vega": [*slope, vega_step],
        f"{prefix}.theta": [*slope, theta_step],
    }


def _scenario_steps(
    risk: UnderlyingRisk,
    options: list[tuple[OptionInput, OptionQuote]],
    positions: list[PositionInput],
    names: Mapping[str, str],
) -> list[Step]:
    """Each scenario of the grid on one underlying: every position's change in value at the
    shocked forward and vol (`option_value_change`, `linear_value_change`: the engine's own),
    their sum negated and weighted; then the largest weighted loss, the scan risk."""
    steps = []
    for n, (scenario, loss) in enumerate(zip(GRID, risk.losses, strict=True)):
        changes = {
            names.get(o.id, o.id): option_value_change(o, scenario, row.mark_price)
            for o, row in options
        } | {names.get(p.id, p.id): linear_value_change(p, scenario) for p in positions}
        change_sum = " + ".join(f"{{{name}}}" for name in changes) or "0"
        binds = " (binds)" if n == risk.worst_scenario else ""
        steps.append(
            Step(
                f"{risk.underlying} scenario {n + 1}{binds}: price {scenario.spot_shock:+.0%}, vol "
                f"{scenario.vol_shock:+.0%}, loss weight {scenario.weight}",
                f"−({change_sum}) × {{weight}}",
                changes | {"weight": scenario.weight},
                loss,
            )
        )
    worst = GRID[risk.worst_scenario]
    steps.append(
        Step(
            f"{risk.underlying} scan risk (scenario {risk.worst_scenario + 1}: price "
            f"{worst.spot_shock:+.0%}, vol {worst.vol_shock:+.0%})",
            "max(0, {worst_weighted_loss})",
            {"worst_weighted_loss": risk.losses[risk.worst_scenario]},
            risk.scan_risk,
        )
    )
    return steps


def _delta_floor_steps(
    risk: UnderlyingRisk,
    options: list[tuple[OptionInput, OptionQuote]],
    positions: list[PositionInput],
    names: Mapping[str, str],
) -> list[Step]:
    """Paradex's minimum delta risk with its numbers: each position's dollar delta, the long
    and short sums, |net| and hedged, and 2 % × |net| + 1 % × hedged."""
    steps = []
    dollar: dict[str, Decimal] = {}
    for o, row in options:
        name = names.get(o.id, o.id)
        dollar[name] = row.position_delta * o.underlying_price
        steps.append(
            Step(
                f"{name} dollar delta",
                "{position_delta} × {F}",
                {"position_delta": row.position_delta, "F": o.underlying_price},
                dollar[name],
            )
        )
    for p in positions:
        name = names.get(p.id, p.id)
        dollar[name] = p.side * p.quantity * p.mark_price
        steps.append(
            Step(
                f"{name} dollar delta",
                "{side} × {quantity} × {mark}",
                {"side": Decimal(p.side), "quantity": p.quantity, "mark": p.mark_price},
                dollar[name],
            )
        )
    long = {name: d for name, d in dollar.items() if d > 0}
    short = {name: d for name, d in dollar.items() if d < 0}
    long_total, short_total = sum(long.values(), ZERO), sum(short.values(), ZERO)
    net = long_total + short_total
    hedged = min(long_total, -short_total)
    steps += [
        _sum_step(f"{risk.underlying} long delta (USD)", long, long_total),
        _sum_step(f"{risk.underlying} short delta (USD)", short, short_total),
        Step(
            f"{risk.underlying} |net delta| (USD)",
            "max({long} + {short}, −({long} + {short}))",
            {"long": long_total, "short": short_total},
            abs(net),
        ),
        Step(
            f"{risk.underlying} hedged delta (USD)",
            "min({long}, −{short})",
            {"long": long_total, "short": short_total},
            hedged,
        ),
        Step(
            f"{risk.underlying} minimum delta risk",
            "{net_rate} × {abs_net} + {hedged_rate} × {hedged}",
            {
                "net_rate": NET_DELTA_RATE,
                "abs_net": abs(net),
                "hedged_rate": HEDGED_DELTA_RATE,
                "hedged": hedged,
            },
            risk.min_delta_risk,
        ),
    ]
    return steps


def _portfolio_steps(
    account: AccountInput, quote: AccountQuote, names: Mapping[str, str]
) -> dict[str, list[Step]]:
    """The grid's requirement with its numbers: per underlying the 24 scenarios with each
    position's P&L, the binding one, the delta floor and the larger of the two; their sum
    (IM) and its half (MM). Positions are named by `names` (their id where absent)."""
    steps: dict[str, list[Step]] = {}
    quoted = list(zip(account.options, quote.options, strict=True))
    for option, row in quoted:
        steps.update(_option_steps(option, row))
    grid = quote.portfolio
    requirement_steps = []
    for risk in grid.underlyings:
        options = [(o, row) for o, row in quoted if o.underlying == risk.underlying]
        # The grid's pool: isolated positions stand alone (`options.portfolio_margin`).
        linear = [
            p for p in account.positions if not p.is_isolated and p.risk_asset == risk.underlying
        ]
        scan = _scenario_steps(risk, options, linear, names)
        floor = _delta_floor_steps(risk, options, linear, names)
        larger = Step(
            f"{risk.underlying} requirement ("
            + ("the scan risk" if risk.scan_risk >= risk.min_delta_risk else "the delta floor")
            + " binds)",
            "max({scan_risk}, {min_delta_risk})",
            {"scan_risk": risk.scan_risk, "min_delta_risk": risk.min_delta_risk},
            risk.initial_margin,
        )
        steps[f"grid.{risk.underlying}.scan_risk"] = scan
        steps[f"grid.{risk.underlying}.min_delta_risk"] = floor
        steps[f"grid.{risk.underlying}.initial_margin"] = [scan[-1], floor[-1], larger]
        requirement_steps += [*scan, *floor, larger]
    initial = _sum_step(
        "portfolio IM = Σ max(scan risk, minimum delta risk)",
        {risk.underlying: risk.initial_margin for risk in grid.underlyings},
        grid.initial_margin,
    )
    maintenance = Step(
        "portfolio MM",
        "{maintenance_share} × {portfolio_im}",
        {"maintenance_share": MAINTENANCE_SHARE, "portfolio_im": grid.initial_margin},
        grid.maintenance_margin,
    )
    linear_pnl = {
        names.get(p.id, p.id): q.unrealized_pnl
        for p, q in zip(account.positions, quote.positions, strict=True)
        if not p.is_isolated
    }
    option_pnl = {names.get(o.id, o.id): row.unrealized_pnl for o, row in quoted}
    steps["account.unrealized_pnl"] = [
        _sum_step(
            "cross uPnL, options at their mark", linear_pnl | option_pnl, quote.unrealized_pnl
        )
    ]
    steps["account.initial_margin"] = [*requirement_steps, initial]
    steps["account.maintenance_margin"] = [*requirement_steps, initial, maintenance]
    return steps


def explain_funding(position: PositionInput, working: RateWorking) -> list[Step]:
    """The next funding of a perpetual position: the interval's average premium so far, the
    predicted rate F (Binance: P + clamp(I − P, ±0.05%), capped per contract) and what the
    position would pay (−) or receive (+) at it at today's mark."""
    signed = position.side * position.quantity
    dampened = working.average_premium + min(
        DAMPENER, max(-DAMPENER, working.interest - working.average_premium)
    )
    return [
        Step(
            "P",
            "Σ k × premium_k / Σ k over the {n} premium samples of the interval so far",
            {"n": Decimal(working.samples)},
            working.average_premium,
        ),
        Step(
            "F before the cap",
            "{P} + clamp({I} − {P}, −0.0005, 0.0005)",
            {"P": working.average_premium, "I": working.interest},
            dampened,
        ),
        Step(
            "F",
            "clamp({F_before_cap}, −{cap}, {cap})",
            {"F_before_cap": dampened, "cap": working.cap},
            working.rate,
        ),
        Step(
            "estimated payment",
            "−{signed_quantity} × {mark_price} × {F}",
            {"signed_quantity": signed, "mark_price": position.mark_price, "F": working.rate},
            funding_payment(quantity=signed, mark_price=position.mark_price, rate=working.rate),
        ),
    ]

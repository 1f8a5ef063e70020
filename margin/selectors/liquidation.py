"""The cross pool's liquidation plan as the liquidation runs it and the desk's review previews
it: the prices not fit to liquidate on and the positions they freeze, and one read of the
parameters, the published marks and the perpetuals a hedge would trade into
`margin.engine.book_liquidation.cross_plan`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from margin.engine.book_liquidation import CrossPlan, cross_plan, scaled_target
from margin.engine.liquidation import stale_is_material
from margin.engine.reference import AccountQuote
from margin.engine.scheme import Requirement
from margin.engine.types import LONG, AccountInput, PositionInput
from margin.models import AssetPrice, Instrument, MarkPrice, ParameterVersion, RevaluationTick
from margin.selectors.accounts import AccountState
from margin.selectors.market import unfit_prices

ZERO = Decimal(0)


@dataclass(frozen=True)
class StalePrice:
    symbol: str
    age_s: Decimal
    value: Decimal  # USD valued on it: a position's notional, a holding's value


@dataclass(frozen=True)
class UnfitPrices:
    """The account's prices that are not fit to liquidate on, what they value, and whether
    that is material (`stale_is_material`). `positions` are the engine ids priced on them,
    `why` says, per engine id, which prices and why."""

    prices: tuple[StalePrice, ...]
    positions: frozenset[str]
    why: dict[str, str]
    assets: frozenset[str]
    material: bool


def _ages(symbols: set[str], *, now: datetime) -> dict[str, Decimal]:
    updated = dict(
        AssetPrice.objects.filter(asset__symbol__in=symbols).values_list(
            "asset__symbol", "updated_at"
        )
    ) | dict(
        MarkPrice.objects.filter(instrument__symbol__in=symbols).values_list(
            "instrument__symbol", "updated_at"
        )
    )
    return {
        s: Decimal(str(round((now - updated[s]).total_seconds(), 3))) if s in updated else None
        for s in symbols
    }


def account_unfit_prices(
    engine_account: AccountInput,
    instruments: dict[str, str],
    *,
    quote: AccountQuote,
    stale: dict[str, str],
    now: datetime,
    share: Decimal,
) -> UnfitPrices:
    """Which of this account's prices are not fit to liquidate on (`stale`: the symbols whose
    price is too old, or flagged uncertain by the price guard, with why), what each values in
    the account, and whether together they are material. `instruments`: engine id → the
    position's instrument symbol.

    A position (an option too) is priced on its instrument's mark and its underlying's index;
    a holding on its asset's index."""
    found: dict[str, Decimal] = {}
    why = {}
    option_marks = {row.id: row.mark_price for row in quote.options}
    held_at = [(p.id, p.risk_asset, p.quantity * p.mark_price) for p in engine_account.positions]
    # An option is priced on its own mark and its underlying's; it values its premium.
    held_at += [
        (o.id, o.underlying, o.quantity * option_marks[o.id]) for o in engine_account.options
    ]
    for engine_id, underlying, value in held_at:
        names = {instruments[engine_id], underlying} & stale.keys()
        for name in names:
            found[name] = found.get(name, ZERO) + value
        if names:
            why[engine_id] = "; ".join(f"{name}: {stale[name]}" for name in sorted(names))
    held = set()
    for line in engine_account.collateral:
        if line.asset in stale and line.quantity:
            found[line.asset] = found.get(line.asset, ZERO) + abs(line.quantity) * line.price
            held.add(line.asset)
    ages = _ages(set(found), now=now)
    maintenance = quote.maintenance_margin + sum(
        (row.maintenance_margin for row in quote.positions if row.margin_mode == "isolated"),
        ZERO,
    )
    return UnfitPrices(
        prices=tuple(StalePrice(s, ages[s], v) for s, v in sorted(found.items())),
        positions=frozenset(why),
        why=why,
        assets=frozenset(held),
        material=stale_is_material(
            sum(found.values(), ZERO),
            maintenance_margin=maintenance,
            margin_balance=quote.margin_balance,
            share=share,
        ),
    )


def stale_prices_now(
    *, tick: RevaluationTick | None, now: datetime, max_age_s: int
) -> dict[str, str]:
    """Symbols not fit to liquidate on (stale, or uncertain by the price guard) at the tick's
    freeze or now, each with why."""
    frozen = {}
    if tick is not None:
        frozen = dict.fromkeys(tick.stale_symbols, "stale at the tick") | tick.price_doubts
    return frozen | unfit_prices(now=now, max_age_s=max_age_s)


def hedge_perpetuals(state: AccountState, underlyings: set[str]) -> dict[str, PositionInput]:
    """Per underlying, the perpetual a delta hedge trades: the account's cross leg on it (its
    id the position's) or a new one (its id the symbol, as `PositionState.engine_id` names a
    position before it has a row). An isolated leg is left alone: a hedge belongs in the
    pool."""
    symbols = Instrument.objects.filter(
        kind=Instrument.Kind.PERPETUAL,
        is_active=True,
        underlying__symbol__in=underlyings,
    ).values_list("symbol", "underlying__symbol")
    perpetuals = {}
    for symbol, underlying in sorted(symbols):
        held = state.position(symbol)
        if held.is_isolated or underlying in perpetuals or symbol not in state.marks:
            continue
        perpetuals[underlying] = PositionInput(
            id=held.engine_id,
            side=LONG,
            quantity=max(abs(held.quantity), 1),
            entry_price=state.marks[symbol],
            mark_price=state.marks[symbol],
            leverage=held.leverage,
            brackets=state.terms.brackets[symbol],
            underlying=underlying,
        )
    return perpetuals


def cross_liquidation_plan(
    state: AccountState,
    engine_account: AccountInput,
    *,
    version: ParameterVersion,
    requirement: Requirement,
    frozen: frozenset[str] = frozenset(),
) -> CrossPlan:
    """The plan of the account's cross pool under its scheme, toward the liquidation line
    after hysteresis (and the target ratio for the linear plan), both scaled when the stress
    loss binds (`scaled_target`); the cost of a linear step is the slippage and the
    liquidation fee, an option closes at its published mark for the fee."""
    symbols = {p.engine_id: p.instrument for p in state.positions.values()}
    return cross_plan(
        engine_account,
        scheme=state.margin_scheme,
        line=scaled_target(version.liquidation_ratio - version.hysteresis, requirement),
        target_ratio=scaled_target(version.liquidation_target_ratio, requirement),
        slippage=version.liquidation_slippage + version.liquidation_fee_rate,
        fee_rate=version.liquidation_fee_rate,
        settlement_asset=state.settlement,
        frozen=frozen,
        prices={o.id: state.marks[symbols[o.id]] for o in engine_account.options},
        perpetuals=hedge_perpetuals(state, {o.underlying for o in engine_account.options}),
    )

"""The cross pool's liquidation plan as the liquidation runs it and the desk's review previews
it: one read of the parameters, the published marks and the perpetuals a hedge would trade
into `margin.engine.book_liquidation.cross_plan`."""

from margin.engine.book_liquidation import CrossPlan, cross_plan, scaled_target
from margin.engine.scheme import Requirement
from margin.engine.types import LONG, AccountInput, PositionInput
from margin.models import Instrument, ParameterVersion
from margin.selectors.accounts import AccountState


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

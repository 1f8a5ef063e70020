"""The decimal arithmetic every Decimal path of the engine runs under."""

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal, getcontext, localcontext
from functools import wraps

# 50 significant digits, as the published test vectors are written: far beyond any exchange's
# tick, so rounding inside the engine never shows in a figure compared to 1e-9.
DECIMAL_PRECISION = 50


def engine_context():
    """A local decimal context with the engine's precision (the caller's context is untouched)."""
    return localcontext(Context(prec=DECIMAL_PRECISION, rounding=ROUND_HALF_EVEN))


def _in_engine_context() -> bool:
    current = getcontext()
    return current.prec == DECIMAL_PRECISION and current.rounding == ROUND_HALF_EVEN


def exact[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` under the engine's decimal context, whatever context the caller has. Calls
    from inside the engine already run under it and go straight through: entering a context
    for every small formula would cost more than the formula."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if _in_engine_context():
            return function(*args, **kwargs)
        with engine_context():
            return function(*args, **kwargs)

    return run


# The ledger's amounts are NUMERIC(38, 18): what a booked amount is rounded to.
LEDGER_QUANTUM = Decimal("1e-18")

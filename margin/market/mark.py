"""Mark price = index + a smoothed basis (Binance's mark price: index plus a moving average of
the premium of the perpetual over the index). The smoothing is what keeps one print on the
perpetual's book from moving the mark, and so from liquidating anyone."""

import math
from decimal import Decimal

BASIS_EMA_TIME_CONSTANT_S = 60.0


def basis_weight(elapsed_s: float) -> Decimal:
    """The weight of a new basis sample after `elapsed_s` seconds: 1 − e^(−t/τ), so the EMA
    ages in time, not in samples, and an irregular tick rate does not change its memory."""
    elapsed_s = max(elapsed_s, 0.0)
    return Decimal(str(round(1 - math.exp(-elapsed_s / BASIS_EMA_TIME_CONSTANT_S), 12)))


def smoothed_basis(
    *, previous_basis: Decimal, perp_price: Decimal | None, index_price: Decimal, elapsed_s: float
) -> Decimal:
    """EMA of (perpetual price − index); without a perpetual price the basis is kept."""
    if perp_price is None:
        return previous_basis
    weight = basis_weight(elapsed_s)
    return previous_basis + weight * ((perp_price - index_price) - previous_basis)

"""Engine inputs: frozen dataclasses of Decimals that are valid by construction.

Every constructor checks its own invariants and raises `EngineInputError` with a field path
relative to itself (`[2].cum`, `quantity`); `margin.engine.request` places those paths under the
request's (`account.positions[0].brackets[2].cum`).
"""

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from margin.engine.errors import EngineInputError
from margin.engine.precision import engine_context, exact

LONG = 1
SHORT = -1
CROSS = "cross"
ISOLATED = "isolated"
MARGIN_MODES = (CROSS, ISOLATED)
type MarginMode = Literal["cross", "isolated"]
CALL = "call"
PUT = "put"
OPTION_TYPES = (CALL, PUT)
type OptionType = Literal["call", "put"]
STANDARD = "standard"
PORTFOLIO = "portfolio"
MARGIN_SCHEMES = (STANDARD, PORTFOLIO)

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True)
class Bracket:
    """One leverage bracket: from `floor` (USD notional) up to the next bracket's floor."""

    floor: Decimal
    mmr: Decimal
    max_leverage: Decimal
    cum: Decimal


@exact
def derive_cum(floors: Sequence[Decimal], mmrs: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Binance USD-M maintenance amount: cum_1 = 0,
    cum_n = cum_(n-1) + floor_n × (mmr_n − mmr_(n-1)).

    It is what makes `notional × mmr − cum` continuous where one bracket hands over to the next.
    """
    cums = [ZERO]
    for n in range(1, len(floors)):
        cums.append(cums[-1] + floors[n] * (mmrs[n] - mmrs[n - 1]))
    return tuple(cums)


def _wrong_cum(n: int, *, expected: Decimal, given: Decimal) -> EngineInputError:
    return EngineInputError(
        f"[{n}].cum",
        f"must be {expected} by cum_n = cum_(n-1) + floor_n × (mmr_n − mmr_(n-1)), got {given}",
    )


@dataclass(frozen=True)
class BracketTable:
    """A venue's leverage brackets for one instrument, ascending by floor, first floor 0."""

    brackets: tuple[Bracket, ...]

    def __post_init__(self) -> None:
        if not self.brackets:
            raise EngineInputError("", "needs at least one bracket")
        if self.brackets[0].floor != 0:
            raise EngineInputError(
                "[0].floor", f"the first floor must be 0, got {self.brackets[0].floor}"
            )
        for n, bracket in enumerate(self.brackets):
            if not 0 <= bracket.mmr < 1:
                raise EngineInputError(
                    f"[{n}].mmr", f"must be at least 0 and below 1, got {bracket.mmr}"
                )
            if bracket.max_leverage <= 0:
                raise EngineInputError(
                    f"[{n}].max_leverage", f"must be positive, got {bracket.max_leverage}"
                )
            if n == 0:
                continue
            previous = self.brackets[n - 1]
            if bracket.floor <= previous.floor:
                raise EngineInputError(
                    f"[{n}].floor",
                    f"floors must ascend: {bracket.floor} does not exceed "
                    f"the previous {previous.floor}",
                )
            if bracket.mmr < previous.mmr:
                raise EngineInputError(
                    f"[{n}].mmr",
                    f"a higher bracket may not ask less margin: {bracket.mmr} "
                    f"is below the previous {previous.mmr}",
                )
        derived = derive_cum([b.floor for b in self.brackets], [b.mmr for b in self.brackets])
        for n, (bracket, cum) in enumerate(zip(self.brackets, derived, strict=True)):
            if bracket.cum != cum:
                raise _wrong_cum(n, expected=cum, given=bracket.cum)

    @classmethod
    def build(cls, rows: Sequence[Mapping[str, Decimal]]) -> "BracketTable":
        """A table from rows of `floor`, `mmr`, `max_leverage` and optionally `cum` and `cap`.

        `cum` is derived; a given one must equal the derivation. A given `cap` (Binance's
        notionalCap) must be the next row's floor: anything else leaves a gap or an overlap.
        """
        for n, row in enumerate(rows):
            for name in ("floor", "mmr", "max_leverage"):
                if name not in row:
                    raise EngineInputError(f"[{n}].{name}", "missing")
        floors = [row["floor"] for row in rows]
        mmrs = [row["mmr"] for row in rows]
        cums = derive_cum(floors, mmrs) if rows else ()
        table = cls(
            tuple(
                Bracket(
                    floor=row["floor"], mmr=row["mmr"], max_leverage=row["max_leverage"], cum=cum
                )
                for row, cum in zip(rows, cums, strict=True)
            )
        )
        for n, (row, bracket) in enumerate(zip(rows, table.brackets, strict=True)):
            if row.get("cum") is not None and row["cum"] != bracket.cum:
                raise _wrong_cum(n, expected=bracket.cum, given=row["cum"])
            cap = row.get("cap")
            if cap is not None and n + 1 < len(rows) and cap != rows[n + 1]["floor"]:
                gap_or_overlap = "a gap" if cap < rows[n + 1]["floor"] else "an overlap"
                raise EngineInputError(
                    f"[{n}].cap",
                    f"leaves {gap_or_overlap} before the next floor {rows[n + 1]['floor']}, "
                    f"got {cap}",
                )
        return table

    def bracket_for(self, notional: Decimal) -> tuple[int, Bracket]:
        """The last bracket whose floor is ≤ `notional` (an exact floor belongs to the upper one),
        1-based. A notional below 0, seen only for trial prices ≤ 0, takes the first bracket."""
        index = max(1, bisect_right(self.brackets, notional, key=lambda bracket: bracket.floor))
        return index, self.brackets[index - 1]


@dataclass(frozen=True)
class HaircutTier:
    """From `floor` (USD value of one holding) up to the next tier's floor, count `ratio` of it."""

    floor: Decimal
    ratio: Decimal


@dataclass(frozen=True)
class CreditTier:
    """An account's credit standing: scales every haircut and every maintenance margin."""

    haircut_scale: Decimal = ONE
    mm_scale: Decimal = ONE

    def __post_init__(self) -> None:
        if self.haircut_scale < 0:
            raise EngineInputError("haircut_scale", f"must be at least 0, got {self.haircut_scale}")
        if self.mm_scale <= 0:
            raise EngineInputError("mm_scale", f"must be positive, got {self.mm_scale}")


@dataclass(frozen=True)
class Liquidity:
    """How much of a market there is to close into: `depth`, the USD it trades over the
    close-out horizon, and `volatility`, σ of its price over that horizon; `coefficient` is Y of
    the square-root law (`margin.engine.liquidity`)."""

    depth: Decimal
    volatility: Decimal
    coefficient: Decimal = ONE

    def __post_init__(self) -> None:
        if not self.depth.is_finite() or self.depth <= 0:
            raise EngineInputError("depth", f"must be a positive number, got {self.depth}")
        for name in ("volatility", "coefficient"):
            value = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise EngineInputError(name, f"must be a finite number at least 0, got {value}")


def _check_owner_quantity(owner_quantity: Decimal | None, quantity: Decimal) -> None:
    """What one owner holds over all their accounts includes this holding."""
    if owner_quantity is not None and not (
        owner_quantity.is_finite() and owner_quantity >= quantity
    ):
        raise EngineInputError(
            "owner_quantity",
            f"what the owner holds over all accounts must be at least this holding's "
            f"{quantity}, got {owner_quantity}",
        )


@dataclass(frozen=True)
class CollateralLine:
    """A holding of one asset; a negative quantity is a liability.

    `owner_quantity` is what the account's owner holds of the asset over all their accounts
    (None: this holding alone): the haircut tiers and the liquidity haircut are taken on it and
    this holding counts its share. `liquidity` is the asset's market, for the extra haircut of
    a holding large against it (None: none)."""

    asset: str
    quantity: Decimal
    price: Decimal
    haircut_tiers: tuple[HaircutTier, ...] = ()
    owner_quantity: Decimal | None = None
    liquidity: Liquidity | None = None

    def __post_init__(self) -> None:
        if not self.asset:
            raise EngineInputError("asset", "must name an asset")
        if self.price <= 0:
            raise EngineInputError("price", f"must be positive, got {self.price}")
        if self.quantity > 0:
            _check_owner_quantity(self.owner_quantity, self.quantity)
        for n, tier in enumerate(self.haircut_tiers):
            if not 0 <= tier.ratio <= 1:
                raise EngineInputError(
                    f"haircut_tiers[{n}].ratio", f"must be within [0, 1], got {tier.ratio}"
                )
            if n == 0 and tier.floor != 0:
                raise EngineInputError(
                    f"haircut_tiers[{n}].floor", f"the first floor must be 0, got {tier.floor}"
                )
            if n > 0 and tier.floor <= self.haircut_tiers[n - 1].floor:
                raise EngineInputError(
                    f"haircut_tiers[{n}].floor",
                    f"floors must ascend: {tier.floor} does not exceed the previous "
                    f"{self.haircut_tiers[n - 1].floor}",
                )


@dataclass(frozen=True)
class PositionInput:
    """A linear USD-margined position. `underlying` names the asset it moves with under stress
    (its own id when not given). `liquidity` is its market, for the liquidity add-on (None:
    none). The add-on and the bracket are taken on `owner_quantity`, what the owner holds of
    the instrument over all their accounts, long and short (None: this position alone), the
    position carrying its share of them (`reference.maintenance_margin`)."""

    id: str
    side: int
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal
    leverage: Decimal
    brackets: BracketTable
    margin_mode: MarginMode = CROSS
    isolated_margin: Decimal | None = None
    underlying: str | None = None
    liquidity: Liquidity | None = None
    owner_quantity: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise EngineInputError("id", "must name the position")
        if self.side not in (LONG, SHORT):
            raise EngineInputError("side", f"must be +1 (long) or -1 (short), got {self.side}")
        for name in ("quantity", "entry_price", "mark_price", "leverage"):
            value = getattr(self, name)
            if value <= 0:
                raise EngineInputError(name, f"must be a positive decimal, got {value}")
        if self.margin_mode not in MARGIN_MODES:
            raise EngineInputError(
                "margin_mode", f"must be cross or isolated, got {self.margin_mode}"
            )
        if self.margin_mode == ISOLATED and (
            self.isolated_margin is None or self.isolated_margin <= 0
        ):
            raise EngineInputError(
                "isolated_margin", "an isolated position needs a positive isolated_margin"
            )
        if self.margin_mode == CROSS and self.isolated_margin is not None:
            raise EngineInputError(
                "isolated_margin", "only an isolated position carries isolated_margin"
            )
        _check_owner_quantity(self.owner_quantity, self.quantity)

    @property
    def is_isolated(self) -> bool:
        return self.margin_mode == ISOLATED

    @property
    def risk_asset(self) -> str:
        return self.underlying or self.id


@dataclass(frozen=True)
class OptionInput:
    """A European, cash-settled option position on `underlying`, one contract = one unit.

    `underlying_price` is the forward F (the mark of the underlying), `expiry_days` the time to
    expiry in days (T = days / 365), `implied_vol` σ annualized; `entry_price` the premium per
    contract it was opened at."""

    id: str
    underlying: str
    option_type: OptionType
    strike: Decimal
    expiry_days: Decimal
    implied_vol: Decimal
    underlying_price: Decimal
    side: int
    quantity: Decimal
    entry_price: Decimal

    def __post_init__(self) -> None:
        if not self.id:
            raise EngineInputError("id", "must name the position")
        if not self.underlying:
            raise EngineInputError("underlying", "must name the underlying asset")
        if self.option_type not in OPTION_TYPES:
            raise EngineInputError("option_type", f"must be call or put, got {self.option_type}")
        if self.side not in (LONG, SHORT):
            raise EngineInputError("side", f"must be +1 (long) or -1 (short), got {self.side}")
        for name in ("strike", "expiry_days", "implied_vol", "underlying_price", "quantity"):
            value = getattr(self, name)
            if value <= 0:
                raise EngineInputError(name, f"must be a positive decimal, got {value}")
        if self.entry_price < 0:
            raise EngineInputError("entry_price", f"must be at least 0, got {self.entry_price}")

    @property
    def is_call(self) -> bool:
        return self.option_type == CALL


@dataclass(frozen=True)
class AccountInput:
    """One account: its cross collateral, its positions (cross and isolated), its credit tier.

    The pool is measured in the coin its positions settle in (`settlement_asset`, USDT for
    USDT-margined contracts): marks, PnL and MM are in that coin already, so collateral is
    valued in it too, at price / `settlement_price` (each asset's price and the settlement
    coin's own, in the same unit, e.g. USD index prices). The settlement coin then counts 1:1
    whatever its index does, as Binance's USDⓈ-M wallet counts USDT; without a settlement asset
    prices are taken as they come.

    `options` sit in the cross pool beside the linear positions; an account holding any, or
    quoted under the `portfolio` margin scheme, is margined by the portfolio grid
    (`margin.engine.options`)."""

    collateral: tuple[CollateralLine, ...] = ()
    positions: tuple[PositionInput, ...] = ()
    credit_tier: CreditTier = field(default_factory=CreditTier)
    settlement_asset: str | None = None
    settlement_price: Decimal = ONE
    options: tuple[OptionInput, ...] = ()
    margin_scheme: str = STANDARD

    @property
    def portfolio_margined(self) -> bool:
        """Margined by the portfolio grid: holding options, or quoted under that scheme."""
        return bool(self.options) or self.margin_scheme == PORTFOLIO

    def in_settlement_coin(self) -> "AccountInput":
        """The same account with every collateral price in the settlement coin."""
        if self.settlement_price == ONE:
            return self
        with engine_context():
            lines = tuple(
                replace(line, price=line.price / self.settlement_price) for line in self.collateral
            )
        return replace(self, collateral=lines, settlement_price=ONE)

    def __post_init__(self) -> None:
        if self.settlement_price <= 0:
            raise EngineInputError(
                "settlement_price", f"must be positive, got {self.settlement_price}"
            )
        if self.settlement_asset is None and self.settlement_price != ONE:
            raise EngineInputError("settlement_price", "needs the settlement_asset it prices")
        if self.margin_scheme not in MARGIN_SCHEMES:
            raise EngineInputError(
                "margin_scheme", f"must be standard or portfolio, got {self.margin_scheme!r}"
            )
        seen: set[str] = set()
        for n, position in enumerate(self.positions):
            if position.id in seen:
                raise EngineInputError(
                    f"positions[{n}].id", f"repeats the position id {position.id!r}"
                )
            seen.add(position.id)
        for n, option in enumerate(self.options):
            if option.id in seen:
                raise EngineInputError(f"options[{n}].id", f"repeats the position id {option.id!r}")
            seen.add(option.id)
        # With mm_scale × mmr ≥ 1 the maintenance margin would outgrow the notional itself: equity
        # could never cover it and the liquidation price would stop being unique.
        with engine_context():
            for n, position in enumerate(self.positions):
                for k, bracket in enumerate(position.brackets.brackets):
                    if self.credit_tier.mm_scale * bracket.mmr >= 1:
                        raise EngineInputError(
                            "credit_tier.mm_scale",
                            f"{self.credit_tier.mm_scale} × mmr {bracket.mmr} of "
                            f"positions[{n}].brackets[{k}] reaches 1: maintenance margin "
                            "would exceed the notional",
                        )

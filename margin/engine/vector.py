"""The vectorized margin engine: the reference's figures for a whole book at once, in float64.

A `Book` is a struct of arrays (accounts, positions, collateral lines); instrument marks and
asset prices are arguments of `revalue`, so stress scenarios and cascades shock them without
rebuilding anything. Sums per account are `np.bincount` with weights; brackets are looked up for
every position at once on padded 2D tables. The tests hold every figure to the Decimal
reference (`margin.engine.reference`) within 1e-9.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.liquidity import impact_rate
from margin.engine.parallel import run_tasks
from margin.engine.types import AccountInput, BracketTable, HaircutTier, Liquidity

FLOAT = np.float64
INDEX = np.int64
BRACKET = np.int16  # 1-based bracket numbers: a venue's table has a dozen rows, not 32,767


# A Book's per-position and per-collateral-line arrays, in declaration order.
POSITION_FIELDS = (
    "pos_account",
    "pos_instrument",
    "pos_side",
    "pos_quantity",
    "pos_entry_price",
    "pos_leverage",
    "pos_isolated",
    "pos_isolated_margin",
)
COLLATERAL_FIELDS = ("col_account", "col_asset", "col_quantity")


@dataclass(frozen=True)
class FloorGrid:
    """Sorted values with a branch-free count of those ≤ x for many x at once: a bucketed
    searchsorted.

    np.searchsorted on a million unsorted notionals mispredicts a branch at every level of its
    binary search. Here a float's bit pattern, which orders positive floats like their values,
    picks a bucket of 2^-kept_bits of an octave (a shift and a clip), and the bucket holds how
    many values lie below it plus the few (normally at most one) that fall inside it, compared
    directly. Exact: no rounding anywhere, an x equal to a value counts it.
    """

    values: np.ndarray
    shift: int
    below_bucket: np.ndarray
    inside_bucket: np.ndarray

    # Buckets span [2^-20, 2^50) USD; anything outside falls in the first or last bucket, which
    # stays exact, only slower if many values share it.
    LOWEST_EXPONENT = -20
    HIGHEST_EXPONENT = 50
    KEPT_BITS = range(4, 11)

    @classmethod
    def of(cls, values: np.ndarray) -> "FloorGrid":
        values = np.unique(np.asarray(values, dtype=FLOAT))
        best = None
        for kept_bits in cls.KEPT_BITS:
            grid = cls._with_shift(values, 52 - kept_bits)
            if best is None or grid.inside_bucket.shape[0] < best.inside_bucket.shape[0]:
                best = grid
            if best.inside_bucket.shape[0] <= 1:
                break
        return best

    @classmethod
    def _with_shift(cls, values: np.ndarray, shift: int) -> "FloorGrid":
        n_buckets = ((cls.HIGHEST_EXPONENT - cls.LOWEST_EXPONENT) << (52 - shift)) + 2
        bucket = cls._bucket(values, shift, n_buckets)
        below = np.searchsorted(bucket, np.arange(n_buckets), side="left").astype(INDEX)
        per_bucket = np.bincount(bucket, minlength=n_buckets)
        # NaN pads: no x compares ≥ NaN, not even +inf.
        inside = np.full((max(1, per_bucket.max(initial=0)), n_buckets), np.nan)
        inside[np.arange(len(values)) - below[bucket], bucket] = values
        return cls(values=values, shift=shift, below_bucket=below, inside_bucket=inside)

    @classmethod
    def _bucket(cls, x: np.ndarray, shift: int, n_buckets: int) -> np.ndarray:
        # Shift before subtracting so that a negative float's bits (sign set) cannot wrap.
        lowest = np.array(2.0**cls.LOWEST_EXPONENT, dtype=FLOAT).view(INDEX) >> shift
        bucket = np.ascontiguousarray(x, dtype=FLOAT).view(INDEX) >> shift
        bucket -= lowest - 1
        return np.clip(bucket, 0, n_buckets - 1, out=bucket)

    def count_at_or_below(self, x: np.ndarray) -> np.ndarray:
        """How many values are ≤ each x."""
        bucket = self._bucket(x, self.shift, len(self.below_bucket))
        count = self.below_bucket[bucket]
        for inside in self.inside_bucket:
            count += x >= inside[bucket]
        return count


@dataclass(frozen=True)
class BracketMatrix:
    """Every instrument's bracket table as rows of padded 2D arrays (n_instruments × width).

    Padding past a table's last bracket has floor +inf (no notional reaches it) and repeats
    the last bracket's mmr, cum and max_leverage.
    """

    floors: np.ndarray
    mmr: np.ndarray
    cum: np.ndarray
    max_leverage: np.ndarray
    # One search for all instruments: `grid` holds every distinct floor of every table, and
    # `grid_bracket[i, p]` is instrument i's 0-based bracket for a notional with p grid floors
    # at or below it (each table's floors are among the grid's).
    grid: FloorGrid
    grid_bracket: np.ndarray

    @classmethod
    def from_tables(cls, tables: Sequence[BracketTable]) -> "BracketMatrix":
        width = max((len(table.brackets) for table in tables), default=1)
        shape = (len(tables), width)
        floors = np.full(shape, np.inf)
        mmr, cum, max_leverage = np.empty(shape), np.empty(shape), np.empty(shape)
        for row, table in enumerate(tables):
            size = len(table.brackets)
            floors[row, :size] = [float(b.floor) for b in table.brackets]
            for target, name in ((mmr, "mmr"), (cum, "cum"), (max_leverage, "max_leverage")):
                values = [float(getattr(b, name)) for b in table.brackets]
                target[row, :size] = values
                target[row, size:] = values[-1]
        grid = FloorGrid.of(floors[np.isfinite(floors)])
        # Below every floor (p = 0) only a notional under 0 falls: it takes the first bracket.
        at_grid = np.concatenate([[-np.inf], grid.values])
        grid_bracket = np.array(
            [np.maximum(np.searchsorted(row, at_grid, side="right") - 1, 0) for row in floors],
            dtype=BRACKET,
        ).reshape(len(tables), len(at_grid))
        return cls(
            floors=floors,
            mmr=mmr,
            cum=cum,
            max_leverage=max_leverage,
            grid=grid,
            grid_bracket=grid_bracket,
        )

    @property
    def width(self) -> int:
        return self.floors.shape[1]

    def lookup(self, instrument: np.ndarray, notional: np.ndarray) -> np.ndarray:
        """0-based bracket of each (instrument, notional): the last floor ≤ notional, an exact
        floor belonging to the upper bracket; a notional below 0 takes the first bracket."""
        return self.lookup_in_rows(self.grid_rows(instrument), notional)

    def grid_rows(self, instrument: np.ndarray) -> np.ndarray:
        """Where each instrument's row starts in the flattened `grid_bracket`."""
        return instrument * self.grid_bracket.shape[1]

    def lookup_in_rows(self, grid_rows: np.ndarray, notional: np.ndarray) -> np.ndarray:
        """`lookup` with the instruments' `grid_rows` already at hand."""
        position = self.grid.count_at_or_below(notional)
        position += grid_rows
        return self.grid_bracket.ravel()[position]


@dataclass(frozen=True)
class HaircutMatrix:
    """Every asset's haircut tiers as padded 2D arrays (n_assets × width): floors +inf past the
    last tier, caps = next floor (+inf for the last); an asset without tiers counts in full."""

    floors: np.ndarray
    caps: np.ndarray
    ratios: np.ndarray

    @classmethod
    def from_tiers(cls, tiers_per_asset: Sequence[Sequence[HaircutTier]]) -> "HaircutMatrix":
        full_value = (HaircutTier(floor=0, ratio=1),)
        rows = [tuple(tiers) or full_value for tiers in tiers_per_asset]
        width = max((len(row) for row in rows), default=1)
        floors = np.full((len(rows), width), np.inf)
        ratios = np.ones((len(rows), width))
        for n, row in enumerate(rows):
            floors[n, : len(row)] = [float(t.floor) for t in row]
            ratios[n, : len(row)] = [float(t.ratio) for t in row]
        caps = np.concatenate([floors[:, 1:], np.full((len(rows), 1), np.inf)], axis=1)
        return cls(floors=floors, caps=caps, ratios=ratios)


def _float(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=FLOAT)


def _index(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=INDEX)


@dataclass(frozen=True)
class Book:
    """Accounts, positions and collateral lines of a whole book, one array per field.

    Per account: `haircut_scale`, `mm_scale`. Per position: `pos_account`, `pos_instrument`
    (row of `brackets` and index into the marks), `pos_side` (+1/−1), `pos_quantity` (> 0),
    `pos_entry_price`, `pos_leverage`, `pos_isolated`, `pos_isolated_margin` (0 for cross).
    Per collateral line: `col_account`, `col_asset` (index into the asset prices and row of
    `haircuts`), `col_quantity` (negative: a liability). Per instrument: `instrument_asset`,
    the asset it moves with under stress.

    Liquidity (`margin.engine.liquidity`), all optional: `instrument_impact` and `asset_impact`,
    Y · σ / √depth of each market (0: no add-on, no liquidity haircut); `pos_owner_quantity`
    and `col_owner_quantity`, what each position's or holding's owner holds of the instrument
    (long and short) or asset over all their accounts (default: the row alone). Haircut tiers,
    brackets and the liquidity charges are taken on the owner's whole holding, each row its
    share (`reference.maintenance_margin`).
    """

    n_accounts: int
    haircut_scale: np.ndarray
    mm_scale: np.ndarray
    pos_account: np.ndarray
    pos_instrument: np.ndarray
    pos_side: np.ndarray
    pos_quantity: np.ndarray
    pos_entry_price: np.ndarray
    pos_leverage: np.ndarray
    pos_isolated: np.ndarray
    pos_isolated_margin: np.ndarray
    col_account: np.ndarray
    col_asset: np.ndarray
    col_quantity: np.ndarray
    brackets: BracketMatrix
    haircuts: HaircutMatrix
    instrument_asset: np.ndarray
    asset_names: tuple[str, ...] = field(default=())
    instrument_names: tuple[str, ...] = field(default=())
    # The asset the pools settle in (USDT), or -1: collateral is valued in that coin, at each
    # asset's price over its price (`AccountInput.in_settlement_coin`).
    settlement_asset: int = -1
    instrument_impact: np.ndarray | None = None
    asset_impact: np.ndarray | None = None
    pos_owner_quantity: np.ndarray | None = None
    col_owner_quantity: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_positions, n_lines = len(self.pos_account), len(self.col_account)
        for name in POSITION_FIELDS[1:]:
            if len(getattr(self, name)) != n_positions:
                raise EngineInputError(f"book.{name}", f"must hold {n_positions} positions")
        for name in COLLATERAL_FIELDS[1:]:
            if len(getattr(self, name)) != n_lines:
                raise EngineInputError(f"book.{name}", f"must hold {n_lines} collateral lines")
        for name in ("haircut_scale", "mm_scale"):
            if len(getattr(self, name)) != self.n_accounts:
                raise EngineInputError(f"book.{name}", f"must hold {self.n_accounts} accounts")
        optional = (
            ("instrument_impact", self.n_instruments, None),
            ("asset_impact", self.n_assets, None),
            ("pos_owner_quantity", n_positions, self.pos_quantity),
            ("col_owner_quantity", n_lines, np.maximum(self.col_quantity, 0.0)),
        )
        for name, size, at_least in optional:
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) != size:
                raise EngineInputError(f"book.{name}", f"must hold {size} values")
            if size and not (np.isfinite(values).all() and values.min() >= 0):
                raise EngineInputError(f"book.{name}", "must be finite and at least 0")
            if at_least is not None and size and (values < at_least * (1 - 1e-12)).any():
                raise EngineInputError(f"book.{name}", "must be at least the row's own quantity")
        limits = (
            ("pos_account", self.n_accounts),
            ("col_account", self.n_accounts),
            ("pos_instrument", self.n_instruments),
            ("col_asset", self.n_assets),
        )
        for name, size in limits:
            values = getattr(self, name)
            if len(values) and (values.min() < 0 or values.max() >= size):
                raise EngineInputError(f"book.{name}", f"indices must lie in [0, {size})")
        if n_positions and not np.all(np.abs(self.pos_side) == 1):
            raise EngineInputError("book.pos_side", "must be +1 or -1")
        if n_positions and not np.all(self.pos_quantity > 0):
            raise EngineInputError("book.pos_quantity", "must be positive")
        # The reference refuses mm_scale × mmr ≥ 1 for the same reason: MM outgrowing the
        # notional leaves no unique liquidation price. The last column is each row's top mmr.
        top_rate = self.mm_scale[self.pos_account] * self.brackets.mmr[self.pos_instrument, -1]
        if n_positions and top_rate.max() >= 1:
            raise EngineInputError("book.mm_scale", "mm_scale × mmr reaches 1 for some position")

    @property
    def n_positions(self) -> int:
        return len(self.pos_account)

    @property
    def n_instruments(self) -> int:
        return len(self.brackets.floors)

    @property
    def n_assets(self) -> int:
        return len(self.haircuts.floors)

    # Arrays that depend on the book but not on prices, built at the first revaluation and kept:
    # the revaluation job and the desk revalue one book again and again at other prices.

    def prepare(self) -> None:
        """Build the price-independent arrays now, before threads share the book: every cached
        property below."""
        for name, attribute in vars(Book).items():
            if isinstance(attribute, cached_property):
                getattr(self, name)

    @cached_property
    def pos_cross_account(self) -> np.ndarray:
        """Each position's account, or n_accounts for an isolated one: sums over the cross pool
        put isolated positions in one extra bin past the last account, which `sum_by` drops."""
        return np.where(self.pos_isolated, self.n_accounts, self.pos_account)

    @cached_property
    def pos_isolated_weight(self) -> np.ndarray:
        """1.0 for an isolated position, 0.0 for a cross one."""
        return self.pos_isolated.astype(FLOAT)

    @cached_property
    def pos_isolated_rows(self) -> np.ndarray:
        return np.flatnonzero(self.pos_isolated)

    @cached_property
    def pos_mm_scale(self) -> np.ndarray:
        return self.mm_scale[self.pos_account]

    @cached_property
    def pos_grid_row(self) -> np.ndarray:
        return self.brackets.grid_rows(self.pos_instrument)

    @cached_property
    def pos_bracket_row(self) -> np.ndarray:
        """Where each position's instrument starts in the flattened bracket tables."""
        return self.pos_instrument * self.brackets.width

    @cached_property
    def pos_owner_held(self) -> np.ndarray:
        """What each position's owner holds of its instrument over all their accounts: its
        notional at a mark picks the bracket (`reference.owner_notional`)."""
        if self.pos_owner_quantity is None:
            return self.pos_quantity
        return np.maximum(self.pos_owner_quantity, self.pos_quantity)

    @cached_property
    def pos_owner_share(self) -> np.ndarray:
        """Each position's share of what its owner holds of the instrument, quantity / owner
        quantity: the share of the owner's bracket cum it carries."""
        return self.pos_quantity / self.pos_owner_held

    @cached_property
    def pos_exposure_cell(self) -> np.ndarray:
        """Each position's cell in a flattened (accounts + 1) × assets exposure matrix: the row
        of its cross account (isolated ones in the extra row), the column of its underlying."""
        return self.pos_cross_account * self.n_assets + self.instrument_asset[self.pos_instrument]

    @cached_property
    def line_exposure_cell(self) -> np.ndarray:
        """Each collateral line's cell in the same exposure matrix: its account, its asset."""
        return self.col_account * self.n_assets + self.col_asset

    @cached_property
    def linked(self) -> "LinkedPools":
        """The cross pools where prices of one underlying move together (`LinkedPools`)."""
        return LinkedPools.of(self)

    @cached_property
    def col_owner_share(self) -> np.ndarray | None:
        """Each holding's share of what its owner holds of the asset (1 for a liability), or
        None when every holding stands alone."""
        if self.col_owner_quantity is None:
            return None
        quantity = self.col_quantity
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(quantity > 0, quantity / self.col_owner_quantity, 1.0)
        return np.where(np.isfinite(share), np.minimum(share, 1.0), 1.0)

    @cached_property
    def line_tiers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per tier (rows) and collateral line (columns): the tier's floor, its cap and the ratio
        the account's credit tier leaves of it, max(0, 1 − haircut_scale × (1 − r)). Floors and
        caps are × the holding's owner share: the owner's whole holding is cut at the floors and
        the holding takes its share (`reference.collateral_slices`)."""
        haircuts, asset = self.haircuts, self.col_asset
        scale = self.haircut_scale[self.col_account]
        floors = np.stack([column[asset] for column in haircuts.floors.T])
        caps = np.stack([column[asset] for column in haircuts.caps.T])
        if self.col_owner_share is not None:
            floors = floors * self.col_owner_share
            caps = caps * self.col_owner_share
        ratios = np.stack(
            [np.maximum(1.0 - scale * (1.0 - column[asset]), 0.0) for column in haircuts.ratios.T]
        )
        return floors, caps, ratios


@dataclass(frozen=True)
class Revaluation:
    """Every figure of `revalue`: per position, per account (the cross pool) and per line.
    `nan` stands where the reference says None. `liquidation_price` and `bankruptcy_price` are
    None when `revalue` was asked not to solve them. The bracket's own figures (mmr, cum,
    max_leverage) are looked up from `bracket` when first read: a fresh array costs its page
    faults, and most readers never want them."""

    book: Book = field(repr=False)
    notional: np.ndarray
    bracket: np.ndarray
    maintenance_margin: np.ndarray
    initial_margin: np.ndarray
    unrealized_pnl: np.ndarray
    liquidation_price: np.ndarray | None
    bankruptcy_price: np.ndarray | None
    isolated_margin_ratio: np.ndarray
    collateral_value: np.ndarray
    account_unrealized_pnl: np.ndarray
    margin_balance: np.ndarray
    account_maintenance_margin: np.ndarray
    account_initial_margin: np.ndarray
    margin_ratio: np.ndarray
    withdrawable: np.ndarray
    collateral_line_value: np.ndarray
    # Part of maintenance_margin and initial_margin per position; what the liquidity haircut
    # leaves of each holding's tiered value (1: none).
    liquidity_addon: np.ndarray | None = None
    liquidity_keep: np.ndarray | None = None

    @cached_property
    def _bracket_cell(self) -> np.ndarray:
        return self.book.pos_bracket_row + self.bracket - 1

    @cached_property
    def mmr(self) -> np.ndarray:
        return self.book.brackets.mmr.ravel()[self._bracket_cell]

    @cached_property
    def cum(self) -> np.ndarray:
        return self.book.brackets.cum.ravel()[self._bracket_cell]

    @cached_property
    def max_leverage(self) -> np.ndarray:
        return self.book.brackets.max_leverage.ravel()[self._bracket_cell]


POSITION_CHUNK = 1 << 16
"""Positions (or collateral lines) per task: a chunk's temporaries stay in cache, and chunks run
on every core (NumPy releases the GIL inside its loops)."""


def _chunks(size: int) -> list[slice]:
    return [
        slice(start, min(start + POSITION_CHUNK, size)) for start in range(0, size, POSITION_CHUNK)
    ]


def sum_by(index: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    """Σ weights per bin (np.bincount, which answers int64 when there are no weights: a sum of
    money stays float64, without a copy when it is one already); indices from n_bins on are
    summed apart and dropped."""
    return np.bincount(index, weights=weights, minlength=n_bins)[:n_bins].astype(FLOAT, copy=False)


@dataclass(frozen=True)
class _Outputs:
    """The per-position and per-line arrays `revalue` fills chunk by chunk."""

    notional: np.ndarray
    bracket: np.ndarray
    maintenance_margin: np.ndarray
    initial_margin: np.ndarray
    unrealized_pnl: np.ndarray
    liquidation_price: np.ndarray
    bankruptcy_price: np.ndarray
    liquidity_addon: np.ndarray
    collateral_line_value: np.ndarray
    liquidity_keep: np.ndarray

    @classmethod
    def allocate(cls, n_positions: int, n_lines: int) -> "_Outputs":
        arrays = {name: np.empty(n_positions) for name in cls.__dataclass_fields__}
        arrays["bracket"] = np.empty(n_positions, dtype=BRACKET)
        arrays["collateral_line_value"] = np.empty(n_lines)
        arrays["liquidity_keep"] = np.ones(n_lines)
        return cls(**arrays)


def _collateral_chunk(book: Book, asset_prices: np.ndarray, lines: slice, out: _Outputs) -> None:
    """Each holding's collateral value at its asset's price (`line_values`)."""
    price = asset_prices[book.col_asset[lines]]
    out.collateral_line_value[lines] = line_values(book, lines, price, out.liquidity_keep[lines])


def line_values(
    book: Book, lines: slice | np.ndarray, price: np.ndarray, keep_out: np.ndarray | None = None
) -> np.ndarray:
    """The collateral value of `lines` (a slice or row numbers) at `price` (one per line): the
    USD value cut at its asset's tier floors, each slice at its ratio scaled by the account's
    credit tier (max(0, 1 − scale × (1 − r))), times what the liquidity haircut keeps (written
    to `keep_out` when given); a liability counts at its full value (see
    `reference.collateral_line_value`)."""
    holding = book.col_quantity[lines] * price
    value = np.zeros_like(holding)
    for floor, cap, ratio in zip(*book.line_tiers, strict=True):
        # min(holding, cap) − floor is −inf on padding (floor +inf), so the slice is 0 there.
        piece = np.minimum(holding, cap[lines])
        piece -= floor[lines]
        np.maximum(piece, 0.0, out=piece)
        piece *= ratio[lines]
        value += piece
    if book.asset_impact is not None:
        # The liquidity haircut on the owner's whole holding, min(1, rate · √owner_value)
        # (`reference.liquidity_keep`); a liability (value 0 here) keeps its full debt below.
        owner = (
            np.maximum(book.col_quantity[lines], 0.0)
            if book.col_owner_quantity is None
            else book.col_owner_quantity[lines]
        )
        keep = np.sqrt(owner * price)
        keep *= book.asset_impact[book.col_asset[lines]]
        np.minimum(keep, 1.0, out=keep)
        np.subtract(1.0, keep, out=keep)
        if keep_out is not None:
            keep_out[:] = keep
        value *= keep
    # A liability has no slices (value 0) and counts in full: adding min(holding, 0) is exact.
    value += np.minimum(holding, 0.0)
    return value


def _position_chunk(book: Book, marks: np.ndarray, rows: slice, out: _Outputs) -> None:
    """Bracket, MM, IM and uPnL of a chunk of positions (Binance USD-M, as in the reference)."""
    instrument, quantity = book.pos_instrument[rows], book.pos_quantity[rows]
    mark = marks[instrument]
    notional = np.multiply(quantity, mark, out=out.notional[rows])
    addon = out.liquidity_addon[rows]
    bracket = position_maintenance(
        book, rows, mark, notional, out=out.maintenance_margin[rows], addon_out=addon
    )
    np.add(bracket, 1, out=out.bracket[rows])
    initial = np.divide(notional, book.pos_leverage[rows], out=out.initial_margin[rows])
    initial += addon
    pnl = np.subtract(mark, book.pos_entry_price[rows], out=out.unrealized_pnl[rows])
    pnl *= quantity
    pnl *= book.pos_side[rows]


def position_maintenance(
    book: Book,
    rows: slice | np.ndarray,
    mark: np.ndarray,
    notional: np.ndarray,
    *,
    out: np.ndarray,
    addon_out: np.ndarray,
) -> np.ndarray:
    """MM of positions `rows` (a slice or row numbers) at `mark`, their notional there given:
    (notional × mmr − cum × owner share) of the bracket of the owner's notional × the credit
    tier's mm_scale (`reference.maintenance_margin`), plus the liquidity add-on (into
    `addon_out`, 0 without a depth). Answers the 0-based brackets."""
    brackets = book.brackets
    owner_notional = book.pos_owner_held[rows] * mark
    bracket = brackets.lookup_in_rows(book.pos_grid_row[rows], owner_notional)
    cell = book.pos_bracket_row[rows] + bracket
    maintenance = np.multiply(notional, brackets.mmr.ravel()[cell], out=out)
    cum = brackets.cum.ravel()[cell]
    cum *= book.pos_owner_share[rows]
    maintenance -= cum
    maintenance *= book.pos_mm_scale[rows]
    if book.instrument_impact is None:
        addon_out[:] = 0.0
    else:
        # notional · Y σ / √depth · √owner_notional (`reference.liquidity_addon`).
        np.sqrt(owner_notional, out=addon_out)
        addon_out *= book.instrument_impact[book.pos_instrument[rows]]
        addon_out *= notional
        maintenance += addon_out
    return bracket


def _root_in_bracket(
    brackets: BracketMatrix,
    bracket_row: np.ndarray,
    bracket: np.ndarray,
    side: np.ndarray,
    quantity: np.ndarray,
    share: np.ndarray,
    mark: np.ndarray,
    notional: np.ndarray,
    mark_line: np.ndarray,
    mm_scale: np.ndarray,
    excess: np.ndarray,
) -> np.ndarray:
    """The price where equity meets MM with each position's MM taken on the line of `bracket`.

    Written relative to the mark, N the notional there, s the owner share and `mark_line` =
    N × mmr − cum × s of the mark's bracket: excess + (side − m × mmr_k) × q × (P − mark) −
    m × (N × mmr_k − cum_k × s − mark_line) = 0; in the mark's own bracket the last term is 0.
    """
    cell = bracket_row + bracket
    mmr = brackets.mmr.ravel()[cell]
    below = notional * mmr
    cum = brackets.cum.ravel()[cell]
    cum *= share
    below -= cum
    below -= mark_line
    below *= mm_scale
    below -= excess
    slope = mm_scale * mmr
    np.subtract(side, slope, out=slope)
    slope *= quantity
    below /= slope
    below += mark
    return below


def _walk_brackets(
    brackets: BracketMatrix,
    bracket_row: np.ndarray,
    grid_row: np.ndarray,
    side: np.ndarray,
    quantity: np.ndarray,
    owner_held: np.ndarray,
    mark: np.ndarray,
    notional: np.ndarray,
    mark_line: np.ndarray,
    mm_scale: np.ndarray,
    excess: np.ndarray,
    bracket: np.ndarray,
) -> np.ndarray:
    """Liquidation prices re-solved in `bracket`, then in the bracket where each lands (that of
    the owner's notional `owner_held` × price), until it stays.

    MM is the upper envelope of its bracket lines (cum makes it continuous, rising mmr
    convex), so every line's root lies on the near side of the true one: past the first
    landing the walk only climbs for a long and only descends for a short, and ends in the
    bracket that holds the root. A step the other way can only come from rounding on the floor
    between two brackets, where both give the same price; the walk stops there.
    """
    price = np.empty(len(side))
    active = np.arange(len(side))
    for _ in range(brackets.width):
        root = _root_in_bracket(
            brackets,
            bracket_row[active],
            bracket,
            side[active],
            quantity[active],
            quantity[active] / owner_held[active],
            mark[active],
            notional[active],
            mark_line[active],
            mm_scale[active],
            excess[active],
        )
        price[active] = root
        landed = brackets.lookup_in_rows(
            grid_row[active], np.maximum(owner_held[active] * root, 0.0)
        )
        onward = (landed - bracket) * side[active] > 0
        active, bracket = active[onward], landed[onward]
        if not active.size:
            break
    return price


def _nan_unless(values: np.ndarray, keep: np.ndarray) -> None:
    """NaN wherever `keep` is False, by arithmetic: values + 0 / keep (0/1 is 0, 0/0 is NaN). A
    masked write mispredicts a branch per element of a mixed mask and costs several times more."""
    with np.errstate(invalid="ignore", divide="ignore"):
        values += np.divide(0.0, keep)


def _liquidation_chunk(
    book: Book,
    marks: np.ndarray,
    pool_balance: np.ndarray,
    pool_maintenance: np.ndarray,
    rows: slice,
    out: _Outputs,
) -> None:
    """Liquidation and bankruptcy prices of a chunk of positions, once the cross pools are
    summed (`pool_*`: per account, then 0 for the isolated positions' extra pool)."""
    brackets = book.brackets
    instrument, pool = book.pos_instrument[rows], book.pos_cross_account[rows]
    side, quantity = book.pos_side[rows], book.pos_quantity[rows]
    mark = marks[instrument]
    maintenance, pnl = out.maintenance_margin[rows], out.unrealized_pnl[rows]
    mm_scale = book.pos_mm_scale[rows]
    cell = book.pos_bracket_row[rows] + out.bracket[rows]
    cell -= 1
    mmr, cum = brackets.mmr.ravel()[cell], brackets.cum.ravel()[cell]

    # Equity behind each position: its cross pool's margin balance, or its isolated margin plus
    # its own uPnL (an isolated position's pool is the extra, empty one). Its excess over the
    # maintenance margin it answers for is what a price move has to eat. Weights of exactly 0
    # and 1 pick the terms: exact, and cheaper than np.where on a mixed mask.
    isolated_weight = book.pos_isolated_weight[rows]
    equity = book.pos_isolated_margin[rows] + pnl
    equity *= isolated_weight
    equity += pool_balance[pool]
    requirement = maintenance * isolated_weight
    requirement += pool_maintenance[pool]
    excess = equity - requirement

    # Bankruptcy: equity + side × q × (P − mark) = 0, at a positive price or none.
    bankruptcy = np.divide(equity, quantity, out=out.bankruptcy_price[rows])
    bankruptcy *= side
    np.subtract(mark, bankruptcy, out=bankruptcy)
    _nan_unless(bankruptcy, bankruptcy > 0)

    # Equity − MM at a price of 0 is excess + MM − side × notional (the other positions' MM and
    # the position's liquidity add-on held as they are, the bracket MM gone). Moving away from 0
    # it only rises for a long and only falls for a short, so a positive liquidation price
    # exists exactly when it starts below 0 for a long, above for a short:
    # side × (excess + bracket MM) < notional.
    notional = out.notional[rows]
    has_price = side * (excess + maintenance - out.liquidity_addon[rows]) < notional

    # Solve equity = MM in the mark's bracket, P = mark − excess / (q × (side − m × mmr)), then
    # once more, for every position, in the bracket where that price lands (the same price if
    # it stays). Walking on from there is left to the few that land elsewhere again.
    # Brackets are those of the owner's notional at the price (`owner_held` × P), each position
    # carrying its share of the cum (`reference.liquidation_price`).
    grid_row, bracket_row = book.pos_grid_row[rows], book.pos_bracket_row[rows]
    owner_held, share = book.pos_owner_held[rows], book.pos_owner_share[rows]
    mark_line = notional * mmr
    mark_line -= cum * share
    trial_notional = np.multiply(mm_scale, mmr)
    np.subtract(side, trial_notional, out=trial_notional)
    trial_notional *= quantity
    np.divide(excess, trial_notional, out=trial_notional)
    np.subtract(mark, trial_notional, out=trial_notional)
    trial_notional *= owner_held
    np.maximum(trial_notional, 0.0, out=trial_notional)
    landed = brackets.lookup_in_rows(grid_row, trial_notional)
    liquidation = out.liquidation_price[rows]
    liquidation[:] = _root_in_bracket(
        brackets,
        bracket_row,
        landed,
        side,
        quantity,
        share,
        mark,
        notional,
        mark_line,
        mm_scale,
        excess,
    )
    landed_again = brackets.lookup_in_rows(grid_row, np.maximum(owner_held * liquidation, 0.0))
    onward = np.flatnonzero(has_price & ((landed_again - landed) * side > 0))
    if onward.size:
        liquidation[onward] = _walk_brackets(
            brackets,
            bracket_row[onward],
            grid_row[onward],
            side[onward],
            quantity[onward],
            owner_held[onward],
            mark[onward],
            notional[onward],
            mark_line[onward],
            mm_scale[onward],
            excess[onward],
            landed_again[onward],
        )
    _nan_unless(liquidation, has_price & (liquidation > 0))


def _starts(sorted_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Where each group's run starts in an array sorted by group (n_groups + 1 bounds)."""
    return np.searchsorted(sorted_groups, np.arange(n_groups + 1)).astype(INDEX)


def group_runs(starts: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray | slice, np.ndarray]:
    """The members of `groups` in an array sorted by group, and each one's place in `groups`
    (a run of consecutive groups in ascending order, as a whole chunk is, takes one slice; the
    first and last alone do not make a run: 0, 2, 1, 3 spans four groups too)."""
    if len(groups) and np.all(np.diff(groups) == 1):
        first, last = starts[groups[0]], starts[groups[-1] + 1]
        counts = np.diff(starts[groups[0] : groups[-1] + 2])
        return slice(first, last), np.repeat(np.arange(len(groups)), counts)
    counts = starts[groups + 1] - starts[groups]
    place = np.repeat(np.arange(len(groups)), counts)
    first = np.cumsum(counts) - counts
    return np.repeat(starts[groups] - first, counts) + np.arange(len(place)), place


@dataclass(frozen=True)
class LinkedPools:
    """Groups of one account's cross positions on one underlying and its collateral lines in
    that asset, where the group holds more than one of them (vectors/README.md, "Prices of one
    underlying move together"): their liquidation and bankruptcy prices are solved with every
    price of the group scaled by one factor. `positions` and `lines` are the book's row numbers
    of the members, sorted by group (`position_group`, `line_group`; `*_start` bounds each
    group's run); `group_account` is each group's account."""

    positions: np.ndarray
    position_group: np.ndarray
    position_start: np.ndarray
    lines: np.ndarray
    line_group: np.ndarray
    line_start: np.ndarray
    group_account: np.ndarray
    # Price-independent figures of the members, gathered once.
    position_grid_row: np.ndarray
    position_bracket_row: np.ndarray
    position_mm_scale: np.ndarray
    position_top_mmr: np.ndarray  # the last bracket's mmr × mm_scale
    position_last_floor: np.ndarray
    # The owner's quantity over the position's (its notional × this is the owner's, which picks
    # the bracket) and the position's share of the owner's (× the bracket's cum).
    position_owner_multiple: np.ndarray
    position_owner_share: np.ndarray
    line_tiers: tuple[np.ndarray, np.ndarray, np.ndarray]  # floors, caps, ratios (tiers × lines)
    line_last_ratio: np.ndarray
    line_last_floor: np.ndarray

    @classmethod
    def of(cls, book: "Book") -> "LinkedPools":
        # Cells of the (accounts + 1) × assets exposure matrix; isolated positions sit in the
        # extra row and are left out (they stand alone).
        n_cells = (book.n_accounts + 1) * book.n_assets
        cross = np.flatnonzero(~book.pos_isolated)
        position_cell = book.pos_exposure_cell[cross]
        members = np.bincount(position_cell, minlength=n_cells)
        members += np.bincount(book.line_exposure_cell, minlength=n_cells)
        linked_cells = np.flatnonzero(members > 1)
        group_of_cell = np.full(n_cells, -1, dtype=INDEX)
        group_of_cell[linked_cells] = np.arange(len(linked_cells))
        n_groups = len(linked_cells)
        position_group = group_of_cell[position_cell]
        line_group = group_of_cell[book.line_exposure_cell]
        positions, lines = cross[position_group >= 0], np.flatnonzero(line_group >= 0)
        position_order = np.argsort(position_group[position_group >= 0], kind="stable")
        line_order = np.argsort(line_group[lines], kind="stable")
        positions, lines = positions[position_order], lines[line_order]
        position_group = group_of_cell[book.pos_exposure_cell[positions]]
        line_group = group_of_cell[book.line_exposure_cell[lines]]
        instrument = book.pos_instrument[positions]
        mm_scale = book.pos_mm_scale[positions]
        floors = book.brackets.floors
        last_floor = np.max(np.where(np.isfinite(floors), floors, 0.0), axis=1)
        line_tiers = tuple(tiers[:, lines] for tiers in book.line_tiers)
        last_tier = np.isfinite(line_tiers[0]).sum(axis=0) - 1
        every_line = np.arange(len(lines))
        return cls(
            positions=positions,
            position_group=position_group,
            position_start=_starts(position_group, n_groups),
            lines=lines,
            line_group=line_group,
            line_start=_starts(line_group, n_groups),
            group_account=linked_cells // book.n_assets,
            position_grid_row=book.pos_grid_row[positions],
            position_bracket_row=book.pos_bracket_row[positions],
            position_mm_scale=mm_scale,
            position_top_mmr=book.brackets.mmr[instrument, -1] * mm_scale,
            position_last_floor=last_floor[instrument],
            position_owner_multiple=book.pos_owner_held[positions] / book.pos_quantity[positions],
            position_owner_share=book.pos_owner_share[positions],
            line_tiers=line_tiers,
            line_last_ratio=line_tiers[2][last_tier, every_line],
            line_last_floor=line_tiers[0][last_tier, every_line],
        )

    @property
    def n_groups(self) -> int:
        return len(self.group_account)


@dataclass(frozen=True)
class _LinkedExcess:
    """`excess(s)` of linked groups and its slope on the straight piece just above `s`
    (reference: `LinkedMove.excess`), built from the figures at the marks. Per group: `base`,
    the excess at s = 1; per linked position (in `LinkedPools` order): its notional at the mark,
    side × notional and MM at the mark (0 without MM); per linked line: the holding's value at
    its price and its collateral value."""

    book: Book
    pools: LinkedPools
    base: np.ndarray
    notional: np.ndarray
    side_notional: np.ndarray
    maintenance: np.ndarray
    holding: np.ndarray
    line_value: np.ndarray
    line_keep: np.ndarray
    with_maintenance: bool

    def members(self, groups: np.ndarray) -> tuple:
        """Rows (into the linked arrays) of the positions and lines in `groups`, and each one's
        place in `groups`."""
        pools = self.pools
        return (*group_runs(pools.position_start, groups), *group_runs(pools.line_start, groups))

    def at(self, groups: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Excess and slope of each of `groups` at its `scale`."""
        book, pools = self.book, self.pools
        position_rows, position_place, line_rows, line_place = self.members(groups)
        position_scale = scale[position_place]
        side_notional, notional = self.side_notional[position_rows], self.notional[position_rows]
        value = position_scale - 1.0
        value *= side_notional
        slope = side_notional
        if self.with_maintenance:
            moved = notional * position_scale
            cell = book.brackets.lookup_in_rows(
                pools.position_grid_row[position_rows],
                moved * pools.position_owner_multiple[position_rows],
            )
            cell += pools.position_bracket_row[position_rows]
            mm_scale = pools.position_mm_scale[position_rows]
            mmr = book.brackets.mmr.ravel()[cell]
            mmr *= mm_scale
            moved *= mmr
            cum = book.brackets.cum.ravel()[cell]
            cum *= mm_scale
            cum *= pools.position_owner_share[position_rows]
            moved -= cum
            moved -= self.maintenance[position_rows]
            value -= moved
            mmr *= notional
            slope = slope - mmr
        holding = self.holding[line_rows]
        moved_holding = holding * scale[line_place]
        line_value = np.minimum(moved_holding, 0.0)
        line_value -= self.line_value[line_rows]
        line_slope = np.minimum(holding, 0.0)
        positive = holding > 0
        keep = self.line_keep[line_rows]
        for floor, cap, ratio in zip(*pools.line_tiers, strict=True):
            floor, cap, ratio = floor[line_rows], cap[line_rows], ratio[line_rows] * keep
            piece = np.minimum(moved_holding, cap)
            piece -= floor
            np.maximum(piece, 0.0, out=piece)
            piece *= ratio
            line_value += piece
            inside = (moved_holding >= floor) & (moved_holding < cap) & positive
            line_slope += inside * ratio * holding
        n = len(groups)
        excess = self.base[groups] + sum_by(position_place, value, n)
        excess += sum_by(line_place, line_value, n)
        total_slope = sum_by(position_place, slope, n)
        total_slope += sum_by(line_place, line_slope, n)
        return excess, total_slope

    def at_zero(self, groups: np.ndarray) -> np.ndarray:
        """Excess at s = 0: no PnL left of the linked marks' moves, no MM (the first bracket's
        cum is 0), no value in the linked holdings."""
        position_rows, position_place, line_rows, line_place = self.members(groups)
        n = len(groups)
        moved = self.side_notional[position_rows] - self.maintenance[position_rows]
        excess = self.base[groups] - sum_by(position_place, moved, n)
        excess -= sum_by(line_place, self.line_value[line_rows], n)
        return excess

    def last_slope(self, groups: np.ndarray) -> np.ndarray:
        """Slope past every kink: the top bracket's mmr, the last tier's ratio."""
        pools = self.pools
        position_rows, position_place, line_rows, line_place = self.members(groups)
        slope = self.side_notional[position_rows]
        if self.with_maintenance:
            slope = slope - self.notional[position_rows] * pools.position_top_mmr[position_rows]
        holding = self.holding[line_rows]
        last_ratio = pools.line_last_ratio[line_rows] * self.line_keep[line_rows]
        line_slope = np.where(holding > 0, holding * last_ratio, holding)
        n = len(groups)
        return sum_by(position_place, slope, n) + sum_by(line_place, line_slope, n)

    def past_every_kink(self, groups: np.ndarray) -> float:
        """One scale past every kink of `groups`: twice the largest of 1, each linked position's
        last floor over its owner's notional and each holding's last tier floor over it."""
        pools = self.pools
        position_rows, _, line_rows, _ = self.members(groups)
        owner_notional = self.notional[position_rows] * pools.position_owner_multiple[position_rows]
        top = np.max(pools.position_last_floor[position_rows] / owner_notional, initial=1.0)
        holding = self.holding[line_rows]
        positive = holding > 0
        last_tier = pools.line_last_floor[line_rows][positive] / holding[positive]
        return 2.0 * max(top, np.max(last_tier, initial=1.0))


LINKED_STEPS = 64
"""Most Newton steps a linked root takes: one per straight piece crossed, and a group has far
fewer pieces than this."""


def _same_piece(slope: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Slopes equal to rounding: the same straight piece (a concave piecewise-linear function
    has one piece per slope)."""
    return np.abs(slope - previous) <= 1e-12 * np.maximum(np.abs(slope), np.abs(previous))


def _newton_from_below(
    excess: _LinkedExcess,
    groups: np.ndarray,
    scale: np.ndarray,
    direction: np.ndarray,
    previous_slope: np.ndarray,
) -> np.ndarray:
    """The root of concave `excess` reached from scales where it is ≤ 0, moving in `direction`
    (+1 up, −1 down): each step goes to the zero of the straight piece it stands on, a line
    that lies above `excess` everywhere, so no step passes the root; the walk ends on a point
    whose piece is the line that led there (`previous_slope`, NaN for none), which is then
    the root. NaN where excess turns away before reaching 0, or the scale reaches 0."""
    scale, previous_slope = scale.copy(), previous_slope.copy()
    result = np.full(len(groups), np.nan)
    active = np.arange(len(groups))
    for _ in range(LINKED_STEPS):
        if not active.size:
            break
        value, slope = excess.at(groups[active], scale[active])
        done = (value >= 0) | _same_piece(slope, previous_slope[active])
        # On the piece that led here the root is this piece's zero. The step that landed was
        # taken from far away (from past every kink, excess is ~10¹⁵ and off by ~1), so on a
        # nearly flat piece it can land well short of the root or past it; the value here is
        # exact to rounding, and one more step along the same line lands on the root.
        landed = done & (value != 0) & (slope != 0)
        scale[active[landed]] -= value[landed] / slope[landed]
        result[active[done]] = scale[active[done]]
        going = ~done & (slope * direction[active] > 0)
        active, value, slope = active[going], value[going], slope[going]
        scale[active] -= value / slope
        previous_slope[active] = slope
        active = active[scale[active] > 0]
    return result


def _linked_scales(
    excess: _LinkedExcess,
    groups: np.ndarray,
    slope_one: np.ndarray,
    piece_at_one: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Per group of `groups`, the scale nearest 1 where `excess` is 0 (reference:
    `linked_scale_root`), nan where none is positive; `slope_one` is each one's slope at 1,
    `piece_at_one` the scales where that straight piece starts and ends: a step along it that
    stays inside has found the root, with no evaluation at all (most groups)."""
    n = len(groups)
    piece_low, piece_high = piece_at_one
    at_one = excess.base[groups]
    healthy = at_one > 0
    nowhere = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Below 1. From a healthy s = 1 a root below exists when excess(0) < 0: one step along
        # the line at 1 (rising there) lands past it, at or above 0, and the walk climbs back;
        # from an s = 1 past the root it walks down while excess rises towards lower scales.
        step = 1.0 - at_one / slope_one
        overshoot = healthy & (slope_one > 0) & (step > 0)
        below_start = np.where(overshoot, step, np.where(healthy, 0.0, 1.0))
        below_previous = np.where(overshoot, slope_one, nowhere)
        below_wanted = np.where(healthy, excess.at_zero(groups) < 0, slope_one < 0)
        # Above 1. From a healthy s = 1 a root above exists when the last piece falls: one step
        # along the line at 1 (falling there) lands past it, else come down from past every
        # kink, or start on the last piece's own zero when excess is still positive there.
        above_wanted = np.where(healthy, excess.last_slope(groups) < 0, slope_one > 0)
        above_start = np.where(healthy, step, 1.0)
        above_previous = np.where(healthy & (slope_one < 0), slope_one, nowhere)
        below_found = overshoot & (step >= piece_low)
        below = np.where(below_wanted & below_found, step, np.nan)
        rows = np.flatnonzero(below_wanted & ~below_found)
        below[rows] = _newton_from_below(
            excess,
            groups[rows],
            below_start[rows],
            np.where(healthy[rows], 1.0, -1.0),
            below_previous[rows],
        )
        above_found = healthy & (slope_one < 0) & (step < piece_high)
        above = np.where(above_wanted & above_found, step, np.nan)
        # A root above matters only if it is nearer than the one found below: where excess is
        # still positive at the mirror scale 2 − below it is farther (concavity), else the
        # walk down starts there.
        mirrored = np.flatnonzero(above_wanted & ~above_found & healthy & ~np.isnan(below))
        if mirrored.size:
            mirror = 2.0 - below[mirrored]
            at_mirror, _ = excess.at(groups[mirrored], mirror)
            farther = at_mirror > 0
            above_wanted[mirrored[farther]] = False
            above_start[mirrored] = mirror
            above_previous[mirrored] = np.nan
        from_top = np.flatnonzero(above_wanted & healthy & (slope_one >= 0) & np.isnan(below))
        if from_top.size:
            top = excess.past_every_kink(groups[from_top])
            at_top, slope_top = excess.at(groups[from_top], np.full(from_top.size, top))
            positive = at_top > 0
            above_start[from_top] = np.where(positive, top - at_top / slope_top, top)
            above_previous[from_top] = np.where(positive, slope_top, np.nan)
        rows = np.flatnonzero(above_wanted & ~above_found)
        above[rows] = _newton_from_below(
            excess,
            groups[rows],
            above_start[rows],
            np.where(healthy[rows], -1.0, 1.0),
            above_previous[rows],
        )
    nearest = np.where(np.abs(above - 1.0) < np.abs(below - 1.0), above, below)
    nearest = np.where(np.isnan(below), above, nearest)
    nearest[at_one == 0] = 1.0
    return nearest


def _group_extreme(
    values: np.ndarray, starts: np.ndarray, reduce: np.ufunc, empty: float
) -> np.ndarray:
    """`reduce` (np.maximum, np.minimum) of each group's run of `values` (sorted by group,
    `starts` bounding the runs), `empty` for a group without one."""
    counts = np.diff(starts)
    result = np.full(len(counts), empty)
    runs = counts > 0
    if values.size:
        result[runs] = reduce.reduceat(values, starts[:-1][runs])
    return result


LINKED_CHUNK = 1 << 15
"""Linked groups per task: groups are independent, so their roots are found on every core."""


def _linked_prices(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    balance: np.ndarray,
    account_maintenance: np.ndarray,
    out: "_Outputs",
    workers: int | None,
) -> None:
    """Liquidation and bankruptcy prices of every linked position: its mark times its group's
    root scale, in place of the single-price solution."""
    pools = book.linked
    n = pools.n_groups
    if not n:
        return
    rows, lines = pools.positions, pools.lines
    notional = out.notional[rows]
    side_notional = notional * book.pos_side[rows]
    holding = book.col_quantity[lines] * asset_prices[book.col_asset[lines]]
    # The liquidity haircut is held at its value at the prices (`reference.LinkedMove`).
    line_keep = out.liquidity_keep[lines]
    # Each group's slope at s = 1 without moving anything: the marks' brackets and the
    # holdings' tiers at their prices.
    line_slope = np.minimum(holding, 0.0)
    for floor, cap, ratio in zip(*pools.line_tiers, strict=True):
        inside = (holding >= floor) & (holding < cap) & (holding > 0)
        line_slope += inside * ratio * line_keep * holding
    equity_slope = sum_by(pools.position_group, side_notional, n)
    equity_slope += sum_by(pools.line_group, line_slope, n)
    cell = pools.position_bracket_row + out.bracket[rows] - 1
    mm_slope = notional * book.brackets.mmr.ravel()[cell] * pools.position_mm_scale
    # The MM of the members at the mark without their liquidity add-ons, which stay as they are.
    bracket_maintenance = out.maintenance_margin[rows] - out.liquidity_addon[rows]
    mm_slope = sum_by(pools.position_group, mm_slope, n)
    line_value = out.collateral_line_value[lines]
    mark = marks[book.pos_instrument[rows]]
    # The straight piece each group stands on at s = 1: from the largest scale where one of its
    # members entered its bracket or tier to the smallest where one leaves it.
    line_low, line_high = np.zeros(len(lines)), np.full(len(lines), np.inf)
    positive = holding > 0
    for floor, cap, _ in zip(*pools.line_tiers, strict=True):
        inside = (holding >= floor) & (holding < cap) & positive
        line_low = np.where(inside, floor / np.where(positive, holding, 1.0), line_low)
        line_high = np.where(inside, cap / np.where(positive, holding, 1.0), line_high)
    lines_low = _group_extreme(line_low, pools.line_start, np.maximum, 0.0)
    lines_high = _group_extreme(line_high, pools.line_start, np.minimum, np.inf)
    floors = book.brackets.floors.ravel()
    owner_notional = notional * pools.position_owner_multiple
    floor_cell = pools.position_bracket_row + out.bracket[rows] - 1
    next_floor = np.where(
        out.bracket[rows] < book.brackets.width,
        floors[np.minimum(floor_cell + 1, floors.size - 1)],
        np.inf,
    )
    mm_piece = (
        np.maximum(
            lines_low,
            _group_extreme(
                floors[floor_cell] / owner_notional, pools.position_start, np.maximum, 0.0
            ),
        ),
        np.minimum(
            lines_high,
            _group_extreme(next_floor / owner_notional, pools.position_start, np.minimum, np.inf),
        ),
    )
    chunks = [np.arange(start, min(start + LINKED_CHUNK, n)) for start in range(0, n, LINKED_CHUNK)]
    for with_maintenance, target in ((True, out.liquidation_price), (False, out.bankruptcy_price)):
        base = balance[pools.group_account]
        if with_maintenance:
            base = base - account_maintenance[pools.group_account]
        excess = _LinkedExcess(
            book=book,
            pools=pools,
            base=base,
            notional=notional,
            side_notional=side_notional,
            maintenance=bracket_maintenance if with_maintenance else np.zeros(len(rows)),
            holding=holding,
            line_value=line_value,
            line_keep=line_keep,
            with_maintenance=with_maintenance,
        )
        slope_one = equity_slope - mm_slope if with_maintenance else equity_slope
        scales = np.empty(n)

        piece = mm_piece if with_maintenance else (lines_low, lines_high)

        def solve(
            groups: np.ndarray, excess=excess, slope_one=slope_one, scales=scales, piece=piece
        ) -> None:
            piece_at_one = (piece[0][groups], piece[1][groups])
            scales[groups] = _linked_scales(excess, groups, slope_one[groups], piece_at_one)

        run_tasks([partial(solve, chunk) for chunk in chunks], workers)
        target[rows] = mark * scales[pools.position_group]


def _margin_ratio(maintenance: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """maintenance / balance, nan where the balance is ≤ 0 (`reference.margin_ratio`)."""
    return np.divide(maintenance, balance, out=np.full_like(balance, np.nan), where=balance > 0)


def revalue(
    book: Book,
    marks: np.ndarray,
    asset_prices: np.ndarray,
    *,
    workers: int | None = None,
    liquidation_prices: bool = True,
) -> Revaluation:
    """Every figure of every position and account at the given instrument marks and asset prices
    (Binance USD-M cross and isolated margin; formulas as in `margin.engine.reference`).

    Positions and collateral lines are processed in chunks on `workers` threads (default: one
    per core); the figures do not depend on how many. Solving each position's liquidation and
    bankruptcy price is most of the work: a caller that reads neither (a stress scenario, a
    cascade round, an impact preview) passes `liquidation_prices=False` and gets None for both.
    """
    marks, asset_prices = _float(marks), _float(asset_prices)
    if marks.shape != (book.n_instruments,):
        raise EngineInputError("marks", f"must hold one mark per instrument ({book.n_instruments})")
    if asset_prices.shape != (book.n_assets,):
        raise EngineInputError("asset_prices", f"must hold one price per asset ({book.n_assets})")
    if book.settlement_asset >= 0:
        asset_prices = asset_prices / asset_prices[book.settlement_asset]
    book.prepare()
    out = _Outputs.allocate(book.n_positions, len(book.col_account))
    position_chunks, line_chunks = _chunks(book.n_positions), _chunks(len(book.col_account))
    run_tasks(
        [partial(_position_chunk, book, marks, rows, out) for rows in position_chunks]
        + [partial(_collateral_chunk, book, asset_prices, lines, out) for lines in line_chunks],
        workers,
    )
    collateral = sum_by(book.col_account, out.collateral_line_value, book.n_accounts)
    account_pnl = sum_by(book.pos_cross_account, out.unrealized_pnl, book.n_accounts)
    account_maintenance = sum_by(book.pos_cross_account, out.maintenance_margin, book.n_accounts)
    account_initial = sum_by(book.pos_cross_account, out.initial_margin, book.n_accounts)
    balance = collateral + account_pnl
    if liquidation_prices:
        pool_balance = np.append(balance, 0.0)
        pool_maintenance = np.append(account_maintenance, 0.0)
        run_tasks(
            [
                partial(_liquidation_chunk, book, marks, pool_balance, pool_maintenance, rows, out)
                for rows in position_chunks
            ],
            workers,
        )
        _linked_prices(book, marks, asset_prices, balance, account_maintenance, out, workers)
    isolated = book.pos_isolated_rows
    isolated_equity = book.pos_isolated_margin[isolated] + out.unrealized_pnl[isolated]
    isolated_margin_ratio = np.full(book.n_positions, np.nan)
    isolated_margin_ratio[isolated] = _margin_ratio(
        out.maintenance_margin[isolated], isolated_equity
    )
    return Revaluation(
        book=book,
        notional=out.notional,
        bracket=out.bracket,
        maintenance_margin=out.maintenance_margin,
        initial_margin=out.initial_margin,
        unrealized_pnl=out.unrealized_pnl,
        liquidation_price=out.liquidation_price if liquidation_prices else None,
        bankruptcy_price=out.bankruptcy_price if liquidation_prices else None,
        isolated_margin_ratio=isolated_margin_ratio,
        collateral_value=collateral,
        account_unrealized_pnl=account_pnl,
        margin_balance=balance,
        account_maintenance_margin=account_maintenance,
        account_initial_margin=account_initial,
        margin_ratio=_margin_ratio(account_maintenance, balance),
        withdrawable=np.maximum(collateral + np.minimum(account_pnl, 0.0) - account_initial, 0.0),
        collateral_line_value=out.collateral_line_value,
        liquidity_addon=out.liquidity_addon,
        liquidity_keep=out.liquidity_keep,
    )


def book_from_accounts(accounts: Sequence[AccountInput]) -> tuple[Book, np.ndarray, np.ndarray]:
    """A book of the given accounts, with its instrument marks and asset prices.

    Assets are keyed by name: every holding of one asset must carry the same price and haircut
    tiers (one market). Instruments are keyed by (bracket table, mark, underlying); an
    underlying held by no one becomes an asset of its own, priced at the mark, so that stress
    scenarios can move it.
    """
    asset_rows: dict[str, int] = {}
    asset_prices: list[float] = []
    asset_tiers: list[tuple[HaircutTier, ...]] = []
    asset_impacts: list[float] = []
    asset_seen: dict[str, tuple] = {}
    settlement = {(a.settlement_asset, a.settlement_price) for a in accounts if a.settlement_asset}
    if len(settlement) > 1:
        raise EngineInputError("accounts", "one book settles in one coin at one price")
    for a, account in enumerate(accounts):
        for c, line in enumerate(account.collateral):
            market = (line.price, line.haircut_tiers, line.liquidity)
            if line.asset not in asset_rows:
                asset_rows[line.asset] = len(asset_prices)
                asset_prices.append(float(line.price))
                asset_tiers.append(line.haircut_tiers)
                asset_impacts.append(_impact(line.liquidity))
                asset_seen[line.asset] = market
            elif asset_seen[line.asset] != market:
                raise EngineInputError(
                    f"accounts[{a}].collateral[{c}]",
                    f"{line.asset} already has another price, haircut tiers or depth in this book",
                )

    settlement_row = -1
    if settlement:
        ((name, price),) = settlement
        if name not in asset_rows:
            asset_rows[name] = len(asset_prices)
            asset_prices.append(float(price))
            asset_tiers.append(())
            asset_impacts.append(0.0)
        elif asset_prices[asset_rows[name]] != float(price):
            raise EngineInputError("accounts", f"{name} is priced apart from its settlement price")
        settlement_row = asset_rows[name]

    instrument_rows: dict[tuple, int] = {}
    tables: list[BracketTable] = []
    marks: list[float] = []
    instrument_asset: list[int] = []
    instrument_names: list[str] = []
    instrument_impacts: list[float] = []
    columns: dict[str, list] = {name: [] for name in (*POSITION_FIELDS, *COLLATERAL_FIELDS)}
    owner_quantity: dict[str, list[float]] = {"pos": [], "col": []}
    for a, account in enumerate(accounts):
        for position in account.positions:
            key = (position.brackets, position.mark_price, position.risk_asset, position.liquidity)
            if key not in instrument_rows:
                instrument_rows[key] = len(tables)
                tables.append(position.brackets)
                marks.append(float(position.mark_price))
                instrument_names.append(position.id)
                instrument_impacts.append(_impact(position.liquidity))
                if position.risk_asset not in asset_rows:
                    asset_rows[position.risk_asset] = len(asset_prices)
                    asset_prices.append(float(position.mark_price))
                    asset_tiers.append(())
                    asset_impacts.append(0.0)
                instrument_asset.append(asset_rows[position.risk_asset])
            columns["pos_account"].append(a)
            columns["pos_instrument"].append(instrument_rows[key])
            columns["pos_side"].append(position.side)
            columns["pos_quantity"].append(float(position.quantity))
            columns["pos_entry_price"].append(float(position.entry_price))
            columns["pos_leverage"].append(float(position.leverage))
            columns["pos_isolated"].append(position.is_isolated)
            columns["pos_isolated_margin"].append(float(position.isolated_margin or 0))
            owner_quantity["pos"].append(float(position.owner_quantity or position.quantity))
        for line in account.collateral:
            columns["col_account"].append(a)
            columns["col_asset"].append(asset_rows[line.asset])
            columns["col_quantity"].append(float(line.quantity))
            owner_quantity["col"].append(float(max(line.owner_quantity or line.quantity, 0)))

    book = Book(
        n_accounts=len(accounts),
        haircut_scale=_float([float(a.credit_tier.haircut_scale) for a in accounts]),
        mm_scale=_float([float(a.credit_tier.mm_scale) for a in accounts]),
        pos_account=_index(columns["pos_account"]),
        pos_instrument=_index(columns["pos_instrument"]),
        pos_side=_float(columns["pos_side"]),
        pos_quantity=_float(columns["pos_quantity"]),
        pos_entry_price=_float(columns["pos_entry_price"]),
        pos_leverage=_float(columns["pos_leverage"]),
        pos_isolated=np.array(columns["pos_isolated"], dtype=bool),
        pos_isolated_margin=_float(columns["pos_isolated_margin"]),
        col_account=_index(columns["col_account"]),
        col_asset=_index(columns["col_asset"]),
        col_quantity=_float(columns["col_quantity"]),
        brackets=BracketMatrix.from_tables(tables),
        haircuts=HaircutMatrix.from_tiers(asset_tiers),
        instrument_asset=_index(instrument_asset),
        asset_names=tuple(asset_rows),
        instrument_names=tuple(instrument_names),
        settlement_asset=settlement_row,
        instrument_impact=_float(instrument_impacts),
        asset_impact=_float(asset_impacts),
        pos_owner_quantity=_float(owner_quantity["pos"]),
        col_owner_quantity=_float(owner_quantity["col"]),
    )
    return book, _float(marks), _float(asset_prices)


def _impact(liquidity: Liquidity | None) -> float:
    """Y · σ / √depth of a market (`Book.instrument_impact`), 0 without one."""
    if liquidity is None:
        return 0.0
    rate = impact_rate(float(liquidity.depth), float(liquidity.volatility))
    return float(rate) * float(liquidity.coefficient)

"""The vectorized margin engine: the reference's figures for a whole book at once, in float64.

A `Book` is a struct of arrays (accounts, positions, collateral lines); instrument marks and
asset prices are arguments of `revalue`, so stress scenarios and cascades shock them without
rebuilding anything. Sums per account are `np.bincount` with weights; brackets are looked up for
every position at once on padded 2D tables. The tests hold every figure to the Decimal
reference (`margin.engine.reference`) within 1e-9.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from margin.engine.errors import EngineInputError
from margin.engine.types import AccountInput, BracketTable, HaircutTier

FLOAT = np.float64
INDEX = np.int64


@dataclass(frozen=True)
class BracketMatrix:
    """Every instrument's bracket table as rows of padded 2D arrays (n_instruments × width).

    Padding past a table's last bracket has floor +inf (no notional reaches it) and repeats
    the last bracket's mmr, cum and max_leverage: a repeated bracket line leaves the envelope of
    bracket lines, and so the liquidation solve, unchanged.
    """

    floors: np.ndarray
    caps: np.ndarray
    mmr: np.ndarray
    cum: np.ndarray
    max_leverage: np.ndarray
    sizes: np.ndarray
    # Bracket lookup in one searchsorted for all instruments: `grid` holds every distinct floor
    # of every table, and `grid_bracket[i, j]` is the 0-based bracket of instrument i for a
    # notional between grid[j] and grid[j + 1] (each table's floors are a subset of the grid).
    grid: np.ndarray
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
        caps = np.concatenate([floors[:, 1:], np.full((len(tables), 1), np.inf)], axis=1)
        grid = np.unique(floors[np.isfinite(floors)])
        grid_bracket = np.array(
            [np.searchsorted(row, grid, side="right") - 1 for row in floors], dtype=INDEX
        ).reshape(len(tables), grid.size)
        return cls(
            floors=floors,
            caps=caps,
            mmr=mmr,
            cum=cum,
            max_leverage=max_leverage,
            sizes=np.array([len(t.brackets) for t in tables], dtype=INDEX),
            grid=grid,
            grid_bracket=grid_bracket,
        )

    @property
    def width(self) -> int:
        return self.floors.shape[1]

    def lookup(self, instrument: np.ndarray, notional: np.ndarray) -> np.ndarray:
        """0-based bracket of each (instrument, notional): the last floor ≤ notional, an exact
        floor belonging to the upper bracket; a notional below 0 takes the first bracket."""
        between = np.searchsorted(self.grid, notional, side="right") - 1
        np.maximum(between, 0, out=between)
        between += instrument * self.grid.size
        return self.grid_bracket.ravel()[between]


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

    def __post_init__(self) -> None:
        n_positions, n_lines = len(self.pos_account), len(self.col_account)
        for name in (
            "pos_instrument",
            "pos_side",
            "pos_quantity",
            "pos_entry_price",
            "pos_leverage",
            "pos_isolated",
            "pos_isolated_margin",
        ):
            if len(getattr(self, name)) != n_positions:
                raise EngineInputError(f"book.{name}", f"must hold {n_positions} positions")
        for name in ("col_asset", "col_quantity"):
            if len(getattr(self, name)) != n_lines:
                raise EngineInputError(f"book.{name}", f"must hold {n_lines} collateral lines")
        for name in ("haircut_scale", "mm_scale"):
            if len(getattr(self, name)) != self.n_accounts:
                raise EngineInputError(f"book.{name}", f"must hold {self.n_accounts} accounts")
        limits = (
            ("pos_account", self.n_accounts),
            ("col_account", self.n_accounts),
            ("pos_instrument", len(self.brackets.floors)),
            ("col_asset", len(self.haircuts.floors)),
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


@dataclass(frozen=True)
class Revaluation:
    """Every figure of `revalue`: per position, per account (the cross pool) and per line.
    `nan` stands where the reference says None."""

    notional: np.ndarray
    bracket: np.ndarray
    mmr: np.ndarray
    cum: np.ndarray
    max_leverage: np.ndarray
    maintenance_margin: np.ndarray
    initial_margin: np.ndarray
    unrealized_pnl: np.ndarray
    liquidation_price: np.ndarray
    bankruptcy_price: np.ndarray
    liquidation_distance: np.ndarray
    isolated_margin_ratio: np.ndarray
    collateral_value: np.ndarray
    account_unrealized_pnl: np.ndarray
    margin_balance: np.ndarray
    account_maintenance_margin: np.ndarray
    account_initial_margin: np.ndarray
    margin_ratio: np.ndarray
    withdrawable: np.ndarray
    collateral_line_value: np.ndarray


def collateral_line_values(book: Book, asset_prices: np.ndarray) -> np.ndarray:
    """Each holding's collateral value: its USD value cut at its asset's tier floors, each slice
    at its ratio scaled by the account's credit tier (max(0, 1 − scale × (1 − r))); a
    liability counts at its full value (see `reference.collateral_line_value`)."""
    holding = book.col_quantity * asset_prices[book.col_asset]
    haircuts = book.haircuts
    scale = book.haircut_scale[book.col_account]
    value = np.zeros_like(holding)
    for tier in range(haircuts.floors.shape[1]):
        floor = haircuts.floors[book.col_asset, tier]
        cap = haircuts.caps[book.col_asset, tier]
        # min(holding, cap) − floor is −inf on padding (floor +inf), so the slice is 0 there.
        piece = np.maximum(np.minimum(holding, cap) - floor, 0.0)
        ratio = np.maximum(1.0 - scale * (1.0 - haircuts.ratios[book.col_asset, tier]), 0.0)
        value += piece * ratio
    return np.where(holding < 0, holding, value)


def _per_account(book: Book, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    # np.bincount answers int64 for empty weights; a sum of money stays float64.
    return np.bincount(index, weights=weights, minlength=book.n_accounts).astype(FLOAT, copy=False)


def _divide_where(numerator: np.ndarray, denominator: np.ndarray, where: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.full_like(numerator, np.nan), where=where)


def _liquidation_across_brackets(
    brackets: BracketMatrix,
    instrument: np.ndarray,
    side: np.ndarray,
    quantity: np.ndarray,
    mark: np.ndarray,
    notional: np.ndarray,
    mark_line: np.ndarray,
    mm_scale: np.ndarray,
    excess: np.ndarray,
) -> np.ndarray:
    """The liquidation price of positions whose price solved in the mark's bracket landed in
    another bracket.

    Maintenance margin is the upper envelope of its bracket lines, max_k (N × mmr_k − cum_k)
    (cum makes it continuous, rising mmr makes it convex). So equity − MM is the lower
    envelope of lines, and with every line's root in hand the liquidation price is the
    largest root for a long, the smallest for a short. Each line is written relative to the
    mark: excess + (side − m × mmr_k) × q × (P − mark) − m × (line_k(N) − line_k0(N)) = 0,
    N the notional at the mark, k0 its bracket (`mark_line` = line_k0(N)).
    """
    mmr = brackets.mmr[instrument]
    below_mark_line = mm_scale[:, None] * (
        (notional[:, None] * mmr - brackets.cum[instrument]) - mark_line[:, None]
    )
    roots = mark[:, None] + (below_mark_line - excess[:, None]) / (
        quantity[:, None] * (side[:, None] - mm_scale[:, None] * mmr)
    )
    return np.where(side > 0, roots.max(axis=1), roots.min(axis=1))


def revalue(book: Book, marks: np.ndarray, asset_prices: np.ndarray) -> Revaluation:
    """Every figure of every position and account at the given instrument marks and asset prices
    (Binance USD-M cross and isolated margin; formulas as in `margin.engine.reference`)."""
    marks, asset_prices = _float(marks), _float(asset_prices)
    brackets = book.brackets
    instrument, account = book.pos_instrument, book.pos_account
    side, quantity = book.pos_side, book.pos_quantity
    isolated, cross = book.pos_isolated, ~book.pos_isolated

    mark = marks[instrument]
    notional = quantity * mark
    bracket = brackets.lookup(instrument, notional)
    cell = instrument * brackets.width + bracket
    mmr = brackets.mmr.ravel()[cell]
    cum = brackets.cum.ravel()[cell]
    max_leverage = brackets.max_leverage.ravel()[cell]
    mm_scale = book.mm_scale[account]
    mark_line = notional * mmr - cum
    maintenance = mark_line * mm_scale
    initial = notional / book.pos_leverage
    pnl = side * quantity * (mark - book.pos_entry_price)

    line_value = collateral_line_values(book, asset_prices)
    collateral = _per_account(book, book.col_account, line_value)
    account_pnl = _per_account(book, account, np.where(cross, pnl, 0.0))
    account_maintenance = _per_account(book, account, np.where(cross, maintenance, 0.0))
    account_initial = _per_account(book, account, np.where(cross, initial, 0.0))
    balance = collateral + account_pnl
    margin_ratio = _divide_where(account_maintenance, balance, balance > 0)
    withdrawable = np.maximum(collateral + np.minimum(account_pnl, 0.0) - account_initial, 0.0)

    # Equity behind each position: the cross pool's margin balance, or the isolated margin plus
    # its own uPnL. Its excess over maintenance margin is what a price move has to eat.
    isolated_equity = book.pos_isolated_margin + pnl
    equity = np.where(isolated, isolated_equity, balance[account])
    excess = equity - np.where(isolated, maintenance, account_maintenance[account])

    # Solve equity = MM in the mark's bracket: P = mark − excess / (q × (side − m × mmr)).
    liquidation = mark - excess / (quantity * (side - mm_scale * mmr))
    liquidation_notional = quantity * liquidation
    in_bracket = (liquidation_notional >= brackets.floors.ravel()[cell]) & (
        liquidation_notional < brackets.caps.ravel()[cell]
    )
    # A price ≤ 0 is final when it is a short's (its root bounds the true one from above) or
    # solved in the first bracket (whose line is the envelope at notional 0).
    no_price = (liquidation <= 0) & ((side < 0) | (bracket == 0))
    moved = np.flatnonzero(~(in_bracket | no_price))
    if moved.size:
        liquidation[moved] = _liquidation_across_brackets(
            brackets,
            instrument[moved],
            side[moved],
            quantity[moved],
            mark[moved],
            notional[moved],
            mark_line[moved],
            mm_scale[moved],
            excess[moved],
        )
    liquidation[liquidation <= 0] = np.nan

    bankruptcy = mark - side * equity / quantity
    bankruptcy[bankruptcy <= 0] = np.nan

    return Revaluation(
        notional=notional,
        bracket=bracket + 1,
        mmr=mmr,
        cum=cum,
        max_leverage=max_leverage,
        maintenance_margin=maintenance,
        initial_margin=initial,
        unrealized_pnl=pnl,
        liquidation_price=liquidation,
        bankruptcy_price=bankruptcy,
        liquidation_distance=side * (mark - liquidation) / mark,
        isolated_margin_ratio=_divide_where(
            maintenance, isolated_equity, isolated & (isolated_equity > 0)
        ),
        collateral_value=collateral,
        account_unrealized_pnl=account_pnl,
        margin_balance=balance,
        account_maintenance_margin=account_maintenance,
        account_initial_margin=account_initial,
        margin_ratio=margin_ratio,
        withdrawable=withdrawable,
        collateral_line_value=line_value,
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
    asset_seen: dict[str, tuple] = {}
    for a, account in enumerate(accounts):
        for c, line in enumerate(account.collateral):
            market = (line.price, line.haircut_tiers)
            if line.asset not in asset_rows:
                asset_rows[line.asset] = len(asset_prices)
                asset_prices.append(float(line.price))
                asset_tiers.append(line.haircut_tiers)
                asset_seen[line.asset] = market
            elif asset_seen[line.asset] != market:
                raise EngineInputError(
                    f"accounts[{a}].collateral[{c}]",
                    f"{line.asset} already has another price or haircut tiers in this book",
                )

    instrument_rows: dict[tuple, int] = {}
    tables: list[BracketTable] = []
    marks: list[float] = []
    instrument_asset: list[int] = []
    instrument_names: list[str] = []
    columns: dict[str, list] = {
        name: []
        for name in (
            "pos_account",
            "pos_instrument",
            "pos_side",
            "pos_quantity",
            "pos_entry_price",
            "pos_leverage",
            "pos_isolated",
            "pos_isolated_margin",
            "col_account",
            "col_asset",
            "col_quantity",
        )
    }
    for a, account in enumerate(accounts):
        for position in account.positions:
            key = (position.brackets, position.mark_price, position.risk_asset)
            if key not in instrument_rows:
                instrument_rows[key] = len(tables)
                tables.append(position.brackets)
                marks.append(float(position.mark_price))
                instrument_names.append(position.id)
                if position.risk_asset not in asset_rows:
                    asset_rows[position.risk_asset] = len(asset_prices)
                    asset_prices.append(float(position.mark_price))
                    asset_tiers.append(())
                instrument_asset.append(asset_rows[position.risk_asset])
            columns["pos_account"].append(a)
            columns["pos_instrument"].append(instrument_rows[key])
            columns["pos_side"].append(position.side)
            columns["pos_quantity"].append(float(position.quantity))
            columns["pos_entry_price"].append(float(position.entry_price))
            columns["pos_leverage"].append(float(position.leverage))
            columns["pos_isolated"].append(position.is_isolated)
            columns["pos_isolated_margin"].append(float(position.isolated_margin or 0))
        for line in account.collateral:
            columns["col_account"].append(a)
            columns["col_asset"].append(asset_rows[line.asset])
            columns["col_quantity"].append(float(line.quantity))

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
    )
    return book, _float(marks), _float(asset_prices)

"""The vectorized engine's own machinery: the bucketed floor search, chunks and threads."""

import numpy as np
import pytest

from margin.bench.engine import random_book
from margin.engine import vector
from margin.engine.demo import INSTRUMENTS
from margin.engine.vector import BracketMatrix, FloorGrid, revalue


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 50_000.0, 600_000.0, 3e6, 1.2e9],
        [0.0, 1000.0, 1000.5, 1001.0, 1001.25],  # several floors in one bucket
        [0.0, 1e-9, 3.0, 2.0**60],  # floors outside the bucketed range
    ],
)
def test_floor_grid_counts_like_searchsorted(values):
    grid = FloorGrid.of(np.array(values))
    rng = np.random.default_rng(1)
    probes = np.concatenate(
        [
            np.array(values),
            np.nextafter(np.array(values), -np.inf),
            np.nextafter(np.array(values), np.inf),
            [-0.0, -1.0, -1e300, 1e-300, 5e-324, 1e300, np.inf],
            np.exp(rng.uniform(-30, 50, 5000)),
        ]
    )
    expected = np.searchsorted(np.array(values), probes, side="right")
    np.testing.assert_array_equal(grid.count_at_or_below(probes), expected)


def test_bracket_lookup_matches_each_table():
    tables = [table for _, table in INSTRUMENTS.values()]
    matrix = BracketMatrix.from_tables(tables)
    rng = np.random.default_rng(2)
    instrument = rng.integers(0, len(tables), 20_000)
    notional = np.concatenate(
        [np.exp(rng.uniform(-5, 22, 19_990)), matrix.floors[instrument[:10], 1]]
    )
    expected = [
        max(0, np.searchsorted(matrix.floors[i], x, side="right") - 1)
        for i, x in zip(instrument, notional, strict=True)
    ]
    np.testing.assert_array_equal(matrix.lookup(instrument, notional), expected)
    assert matrix.lookup(np.array([0]), np.array([-5.0]))[0] == 0


def test_chunks_and_threads_change_nothing(monkeypatch):
    demo = random_book(5000, 900, seed=3)
    whole = revalue(demo.book, demo.marks, demo.asset_prices, workers=1)
    monkeypatch.setattr(vector, "POSITION_CHUNK", 97)
    chunked = revalue(demo.book, demo.marks, demo.asset_prices, workers=2)
    figures = [name for name in whole.__dataclass_fields__ if name != "book"]
    for name in [*figures, "mmr", "cum", "max_leverage"]:
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name), err_msg=name)
    # The demo book has every case the chunks handle: liquidation in another bracket, none at all.
    assert np.isnan(whole.liquidation_price).any() and np.isfinite(whole.liquidation_price).any()


def test_without_liquidation_prices_every_other_figure_is_the_same():
    demo = random_book(3000, 500, seed=4)
    full = revalue(demo.book, demo.marks, demo.asset_prices)
    lean = revalue(demo.book, demo.marks, demo.asset_prices, liquidation_prices=False)
    assert lean.liquidation_price is None and lean.bankruptcy_price is None
    solved = {"book", "liquidation_price", "bankruptcy_price"}
    for name in set(full.__dataclass_fields__) - solved:
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)

"""The library of real stress events: shipped, cited, turned into moves by hand."""

import json

import numpy as np
import pytest

from margin.engine.errors import EngineInputError
from margin.engine.events import event_moves, load_event, stress_events


def test_every_shipped_event_is_cited_and_dated():
    events = stress_events()
    assert list(events) == ["march_2020", "may_2021", "may_2022", "november_2022"]
    for event in events.values():
        assert "Yahoo Finance" in event.source and "github.com/" in event.source
        assert list(event.dates) == sorted(event.dates)
        assert event.leader == "BTC"


def test_black_thursday_by_hand():
    event = stress_events()["march_2020"]
    # BTC closed 7,911.43 on 11 March 2020 and 4,970.79 on the 12th: −37.2 %; ETH −42.3 %
    assert event.moves("BTC")[0] == pytest.approx(4970.788086 / 7911.430176 - 1)
    assert event.moves("BTC")[0] == pytest.approx(-0.3717, abs=1e-4)
    assert event.moves("ETH")[0] == pytest.approx(-0.4235, abs=1e-4)
    assert event.worst_move() == pytest.approx(110.605873 / 194.868530 - 1)


def test_moves_over_a_book_take_own_series_then_the_leader_and_hold_stablecoins():
    event = stress_events()["march_2020"]
    names = ("USDT", "BTC", "ETH", "SOL", "USDC")
    moves = event_moves(event, names, [False, True, True, True, False])
    assert moves.shape == (len(event.dates) - 1, len(names))
    np.testing.assert_allclose(moves[:, 1], event.moves("BTC"))
    np.testing.assert_allclose(moves[:, 2], event.moves("ETH"))
    np.testing.assert_allclose(moves[:, 3], event.moves("BTC"))  # SOL: no series, follows BTC
    assert not moves[:, [0, 4]].any()


def test_a_file_with_a_missing_close_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "name": "bad",
                "title": "t",
                "summary": "s",
                "source": "s",
                "dates": ["2020-01-01", "2020-01-02"],
                "closes": {"BTC": [1.0]},
            }
        )
    )
    with pytest.raises(EngineInputError, match="one close per date"):
        load_event(path)

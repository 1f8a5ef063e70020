"""The library of real stress events: shipped, cited, turned into moves by hand."""

import json

import numpy as np
import pytest

from margin.engine.errors import EngineInputError
from margin.engine.events import event_moves, load_event, stress_events


def _instant(point: str) -> str:
    """A point's UTC instant as sortable text: a date stands for its close, the day's end."""
    return point if "T" in point else f"{point}T24:00Z"


def test_every_shipped_event_is_cited_and_dated():
    events = stress_events()
    assert list(events) == ["march_2020", "may_2021", "may_2022", "november_2022", "october_2025"]
    for event in events.values():
        assert "Yahoo Finance" in event.source and "github.com/" in event.source
        assert [_instant(p) for p in event.dates] == sorted(_instant(p) for p in event.dates)
        assert event.leader == "BTC"
    # ETH in every episode; SOL where its published history reaches (from April 2020)
    for name, event in events.items():
        assert set(event.closes) == (
            {"BTC", "ETH"} if name == "march_2020" else {"BTC", "ETH", "SOL"}
        )


def test_the_terra_collapse_moves_eth_and_sol_by_their_own_closes():
    event = stress_events()["may_2022"]
    # ETH 2,940.64 on 4 May 2022 to 2,072.11 on the 11th: −29.5 %; SOL 92.77 to 50.21: −45.9 %
    assert event.moves("ETH")[6] == pytest.approx(2072.11 / 2940.64 - 1)
    assert event.moves("ETH")[6] == pytest.approx(-0.2954, abs=1e-4)
    assert event.moves("SOL")[6] == pytest.approx(-0.4588, abs=1e-4)


def test_the_october_2025_de_peg_by_hand():
    event = stress_events()["october_2025"]
    assert event.dates[1] == "2025-10-10T21:40Z"
    # at 21:40 UTC: ETH 3,800 from its 4,369.14 close of 9 October, −13.03 %; USDe at 0.65 of
    # its dollar peg, −35 %; wBETH at 430 / 3,800 of ETH: 430 from 4,369.14, −90.16 %
    assert event.moves("ETH")[0] == pytest.approx(3800 / 4369.14 - 1)
    assert event.moves("USDE")[0] == pytest.approx(-0.35)
    assert event.moves("WBETH")[0] == pytest.approx(430 / 4369.14 - 1)
    assert event.moves("WBETH")[0] == pytest.approx(-0.9016, abs=1e-4)
    # BTC has no cited price at 21:40: it holds its 9 October close, then takes the 10th's
    # (113,214.37 from 121,705.59: −6.98 %)
    assert event.moves("BTC")[0] == 0
    assert event.moves("BTC")[1] == pytest.approx(113214.37 / 121705.59 - 1)
    # back at their pegs by the close: USDe still, wBETH with ETH
    assert event.moves("USDE")[1] == 0
    assert event.moves("WBETH")[1] == pytest.approx(event.moves("ETH")[1])
    assert event.worst_move() == pytest.approx(430 / 4369.14 - 1)
    # over a book: the de-pegged tokens take their own moves, a stablecoin without one holds
    names = ("USDT", "BTC", "USDE", "WBETH", "BNB")
    moves = event_moves(event, names, [False, True, False, True, True])
    np.testing.assert_allclose(moves[:, 2], event.moves("USDE"))
    np.testing.assert_allclose(moves[:, 3], event.moves("WBETH"))
    np.testing.assert_allclose(moves[:, 4], event.moves("BTC"))  # BNB follows the leader
    assert not moves[:, 0].any()


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"closes": {"BTC": [None, 1.0]}}, "first point needs a price"),
        ({"depegs": {"X": {"peg": "ETH", "fractions": {}}}}, "which has no series"),
        ({"depegs": {"X": {"peg": "USD", "fractions": {"2020-01-03": 0.5}}}}, "not in dates"),
        ({"depegs": {"X": {"peg": "USD", "fractions": {"2020-01-02": 1.5}}}}, r"lies in \(0, 1\]"),
    ],
)
def test_a_file_with_a_bad_series_or_de_peg_is_refused(tmp_path, change, message):
    path = tmp_path / "bad.json"
    data = {
        "name": "bad",
        "title": "t",
        "summary": "s",
        "source": "s",
        "dates": ["2020-01-01", "2020-01-02"],
        "closes": {"BTC": [1.0, 2.0]},
    }
    path.write_text(json.dumps(data | change))
    with pytest.raises(EngineInputError, match=message):
        load_event(path)

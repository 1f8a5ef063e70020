"""Random books and random price paths through run_scenario (issue 14): whatever happens,
the ledger balances, the insurance fund never goes below 0, no wallet ends negative without a
write-off (or ADL) that explains it, no account is liquidated twice in a tick, and no
liquidation grows the net exposure of an account's cross pool to any underlying (isolated
positions are margined and liquidated on their own)."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.scenarios.support import account, assert_books_sound, position, run_scenario, scenario

pytestmark = pytest.mark.django_db

SYMBOLS = {"BTCUSDT": 95000, "ETHUSDT": 3400, "BTC-FUTURE": 95000}


@st.composite
def positions(draw):
    symbol = draw(st.sampled_from(sorted(SYMBOLS)))
    entry = SYMBOLS[symbol]
    notional = draw(st.integers(2_000, 400_000))
    quantity = (Decimal(notional) / entry).quantize(Decimal("0.001"))
    leverage = draw(st.sampled_from(["5", "10", "20", "50"]))
    side = draw(st.sampled_from(["long", "short"]))
    isolated = {}
    if symbol != "BTC-FUTURE" and draw(st.booleans()):
        isolated = {"isolated_margin": str((quantity * entry / Decimal(leverage) * 2).quantize(1))}
    return position(symbol, side, quantity, entry, leverage, **isolated)


@st.composite
def books(draw):
    accounts = []
    for n in range(draw(st.integers(2, 4))):
        held = draw(st.lists(positions(), min_size=1, max_size=3, unique_by=lambda p: p["symbol"]))
        usdt = draw(st.integers(500, 60_000)) + sum(
            int(Decimal(p.get("isolated_margin", "0"))) for p in held
        )
        accounts.append(account(f"t{n}", {"USDT": usdt}, *held))
    path, at_s = [], 0
    for _ in range(draw(st.integers(1, 3))):
        at_s += 10
        path.append(
            (
                at_s,
                {
                    "BTC": str(95000 * draw(st.integers(80, 112)) // 100),
                    "ETH": str(3400 * draw(st.integers(80, 112)) // 100),
                },
            )
        )
    fund = draw(st.sampled_from(["0", "500", "100000"]))
    return scenario(accounts, path, fund=fund)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=books())
# A hedged cross book gapping against both legs with an empty fund: its whole deficit sat on
# the BTC long's bankruptcy price, past the opposing short's entry, and the short was
# deleveraged into a realized loss and a negative wallet with no event of its own.
@example(
    doc=scenario(
        [
            account(
                "t0",
                {"USDT": 20000},
                position("BTCUSDT", "long", "4", 95000, "50"),
                position("ETHUSDT", "short", "100", 3400, "50"),
            ),
            account("t1", {"USDT": 500}, position("BTCUSDT", "short", "1", 95000, "5")),
        ],
        [(10, {"BTC": "76000", "ETH": "3808"})],
        fund="0",
    )
)
def test_random_books_and_paths_keep_every_invariant(doc):
    result = run_scenario(doc)
    assert_books_sound(result)
    for step in result["timeline"]:
        # one Liquidation row per account and tick, by construction: the runs are the accounts
        assert step["liquidation_runs"] == len(step["liquidations"])
        for name, done in step["liquidations"].items():
            before = done["cross_net_exposure_before"]
            after = done["cross_net_exposure_after"]
            for underlying, quantity in after.items():
                assert abs(Decimal(quantity)) <= abs(Decimal(before.get(underlying, "0"))), (
                    name,
                    step["at_s"],
                    before,
                    after,
                )
                if Decimal(quantity):
                    assert (Decimal(quantity) > 0) == (Decimal(before[underlying]) > 0)

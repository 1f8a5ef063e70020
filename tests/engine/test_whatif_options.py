"""The what-if on an account holding options: the forward moves with the price shock, the
implied vol takes the desk's scenario vol shock (`option_stress.HeldOptions.shocked`, the
grid's scaling by expiry), and the reference engine quotes the account again."""

from decimal import Decimal

import numpy as np
import pytest

from margin.engine.option_stress import HeldOptions
from margin.engine.options import GRID, portfolio_margin
from margin.engine.options_vector import option_book_from_accounts
from margin.engine.reference import quote_account
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts
from margin.engine.whatif import Shock, shocked_input, shocked_quote
from tests.engine.support import btc_perp, usdt
from tests.engine.test_options import option

D = Decimal


def book(*options, positions=()) -> AccountInput:
    return AccountInput(collateral=(usdt("80000"),), positions=positions, options=options)


def shock_pnl(account: AccountInput, shock: Shock) -> list[Decimal]:
    """Per option: what the shock makes (+) or loses (−), the change of its uPnL."""
    _, after = shocked_quote(account, shock)
    now = quote_account(account)
    return [
        a.unrealized_pnl - n.unrealized_pnl for a, n in zip(after.options, now.options, strict=True)
    ]


@pytest.mark.parametrize(("percent", "vol_percent"), [(0, 60), (-12, -50), (8, 100), (-30, 0)])
def test_shocked_forwards_and_vols_are_the_desk_scenarios(percent, vol_percent):
    # a 0.5-day, a 7-day and a 90-day series: the vol shock reaches each by its own scale,
    # the short one floored at 1 % of its vol when v = −50 %
    account = book(
        option("A", days="0.5", side=1),
        option("B", option_type="put", strike="90000", days="7"),
        option("C", strike="120000", days="90", side=1),
        positions=(btc_perp(),),
    )
    moved = shocked_input(account, Shock(percent, vol_percent=vol_percent))
    linear, _, _ = book_from_accounts([account])
    held = HeldOptions(*option_book_from_accounts([account], linear))
    names = held.options.key_names
    moves = np.array([percent / 100 if name == "BTC" else 0.0 for name in names])
    vol_shocks = np.array([vol_percent / 100 if name == "BTC" else 0.0 for name in names])
    market = held.shocked(moves, vol_shocks, linear)
    series = held.options.positions.series
    for n, option_after in enumerate(moved.options):
        assert float(option_after.underlying_price) == pytest.approx(
            market.forwards[series[n]], rel=1e-12
        )
        assert float(option_after.implied_vol) == pytest.approx(market.vols[series[n]], rel=1e-12)
    assert moved.positions[0].mark_price == btc_perp().mark_price * (1 + D(percent) / 100)


def test_a_price_and_vol_shock_of_a_grid_scenario_gives_its_p_and_l():
    # scenario 3 of the grid: price +4 %, vol +40 %, weight 1
    account = book(option("C", side=-1, quantity="2"), option("P", option_type="put", side=1))
    (risk,) = portfolio_margin(account.options, ()).underlyings
    assert (GRID[2].spot_shock, GRID[2].vol_shock, GRID[2].weight) == (D("0.04"), D("0.4"), 1)
    made = sum(shock_pnl(account, Shock(4, vol_percent=40)), D(0))
    assert abs(made - -risk.losses[2]) < D("1e-20")  # the sum in the default 28 digits


def test_vol_up_at_an_unchanged_price_pays_a_long_option_and_costs_a_short_one():
    account = book(option("long call", side=1), option("short put", option_type="put", side=-1))
    long_call, short_put = shock_pnl(account, Shock(0, vol_percent=50))
    assert long_call > 0 > short_put
    long_call, short_put = shock_pnl(account, Shock(0, vol_percent=-40))
    assert long_call < 0 < short_put


def test_a_shock_on_another_asset_leaves_the_options_alone():
    account = book(option("C", side=1))
    assert shocked_input(account, Shock(-20, "ETH", vol_percent=80)).options == account.options

"""Options: Black-76 against published worked examples, put-call parity, the Greeks against
the value they differentiate, the portfolio-margin grid on hand-computed books, and the quote
format of vectors/OPTIONS.md through the command line."""

import json
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.engine import options_vector
from margin.engine.explain import explain_account
from margin.engine.options import (
    GRID,
    _erf_series,
    _erfc_continued_fraction,
    black76,
    black76_d1_d2,
    black76_value,
    erfc,
    min_delta_risk,
    normal_cdf,
    portfolio_margin,
    shocked_vol,
    underlying_risk,
    years,
)
from margin.engine.precision import engine_context
from margin.engine.reference import quote_account
from margin.engine.types import AccountInput, OptionInput
from tests.engine.strategies import decimals
from tests.engine.support import OPTIONS_MD_ROW, btc_perp, close, option_request, run_python, usdt
from tests.engine.test_explain import assert_steps_add_up
from tests.engine.test_options_vector import option_books

D = Decimal
ZERO = Decimal(0)
# The autouse precision fixture holds no state between examples.
SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.fixture(autouse=True)
def engine_precision():
    """The tests' own Decimal arithmetic at the engine's 50 digits, not the default 28."""
    with engine_context():
        yield


def option(
    option_id: str = "C",
    *,
    option_type: str = "call",
    strike: str = "100000",
    days: str = "30",
    vol: str = "0.55",
    forward: str = "95000",
    side: int = -1,
    quantity: str = "1",
    entry: str = "0",
    underlying: str = "BTC",
) -> OptionInput:
    return OptionInput(
        id=option_id,
        underlying=underlying,
        option_type=option_type,
        strike=D(strike),
        expiry_days=D(days),
        implied_vol=D(vol),
        underlying_price=D(forward),
        side=side,
        quantity=D(quantity),
        entry_price=D(entry),
    )


def value_of(o: OptionInput, *, spot_shock: Decimal = ZERO, vol: Decimal | None = None) -> Decimal:
    return black76_value(
        o.option_type,
        o.underlying_price * (1 + spot_shock),
        o.strike,
        o.implied_vol if vol is None else vol,
        o.expiry_days,
    )


# --- Black-76 against published figures ---------------------------------------------------------


def test_black76_haug_worked_example():
    """E. G. Haug, The Complete Guide to Option Pricing Formulas (2nd ed.), 1.1.2 "Options on
    futures: the Black-76 model": futures 19, strike 19, nine months, r = 10 %, σ = 28 % gives
    call = put = 1.7011. Black-76 discounts by e^(−rT); our venues' rate is 0, so the
    undiscounted value times e^(−0.075) must give the published figure."""
    days = D("0.75") * 365
    discount = D(math.exp(-0.10 * 0.75))
    call = black76("call", D(19), D(19), D("0.28"), days)
    put = black76("put", D(19), D(19), D("0.28"), days)
    assert round(call.value * discount, 4) == D("1.7011")
    assert round(put.value * discount, 4) == D("1.7011")


def test_black76_hull_worked_example():
    """J. C. Hull, Options, Futures, and Other Derivatives, "Black's model" for futures options:
    a European put on crude oil futures with F0 = K = 20, r = 9 %, T = 4 months, σ = 25 %:
    d1 = 0.0722, d2 = −0.0722, N(−d1) = 0.4712, N(−d2) = 0.5288, put = 1.12."""
    days = D(365) / 3
    d1, d2 = black76_d1_d2(D(20), D(20), D("0.25"), days)
    assert round(d1, 4) == D("0.0722") and round(d2, 4) == D("-0.0722")
    assert round(normal_cdf(-d1), 4) == D("0.4712")
    assert round(normal_cdf(-d2), 4) == D("0.5288")
    put = black76("put", D(20), D(20), D("0.25"), days)
    assert round(put.value * D(math.exp(-0.09 / 3)), 2) == D("1.12")
    # A put's delta on the forward is −N(−d1).
    assert round(put.delta, 4) == D("-0.4712")


def test_decimal_erfc_meets_the_float_library():
    for z in ("0", "0.3", "1", "2.99", "3", "3.01", "5", "8", "12", "25"):
        expected = math.erfc(float(z))
        assert abs(float(erfc(D(z))) - expected) <= 4e-15 * expected, z


def test_decimal_erfc_series_and_continued_fraction_agree_where_they_meet():
    """The engine switches from the series to the continued fraction at 3; around there both
    converge, and at 90 digits they agree far below the engine's 50."""
    with localcontext() as context:
        context.prec = 90
        for z in ("2.5", "3", "3.5", "4.5"):
            series = 1 - _erf_series(D(z))
            fraction = _erfc_continued_fraction(D(z))
            assert abs(series - fraction) <= D("1e-50") * fraction, z


def test_vector_erfc_meets_the_float_library_everywhere():
    points = np.concatenate([np.linspace(0, 26, 60001), np.geomspace(1e-12, 26, 5000)])
    expected = np.array([math.erfc(x) for x in points])
    assert np.max(np.abs(options_vector.erfc(points) - expected) / expected) < 5e-15


option_inputs = st.builds(
    lambda kind, strike, days, vol, forward: option(
        option_type=kind, strike=strike, days=days, vol=vol, forward=forward
    ),
    st.sampled_from(["call", "put"]),
    decimals("1000", "200000", 0).map(str),
    decimals("0.05", "400", 2).map(str),
    decimals("0.05", "3", 3).map(str),
    decimals("1000", "200000", 0).map(str),
)


@settings(max_examples=60, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(option_inputs)
def test_put_call_parity(o):
    """With a zero rate, call − put = F − K for every strike, expiry and vol; put delta =
    call delta − 1; gamma, vega and theta are the same for both."""
    call = black76("call", o.underlying_price, o.strike, o.implied_vol, o.expiry_days)
    put = black76("put", o.underlying_price, o.strike, o.implied_vol, o.expiry_days)
    scale = float(o.underlying_price + o.strike)
    assert close(call.value - put.value, o.underlying_price - o.strike, scale=scale)
    assert close(call.delta - put.delta, 1)
    assert (call.gamma, call.vega, call.theta) == (put.gamma, put.vega, put.theta)


@settings(max_examples=40, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(option_inputs)
def test_greeks_are_the_derivatives_of_the_value(o):
    """Central differences of the value: delta = ∂V/∂F, gamma = ∂²V/∂F², vega = ∂V/∂σ per
    vol point, theta = −∂V/∂days (one calendar day of decay)."""
    g = black76(o.option_type, o.underlying_price, o.strike, o.implied_vol, o.expiry_days)
    f, k, s, t = o.underlying_price, o.strike, o.implied_vol, o.expiry_days
    h = f * D("1e-8")

    def v(**change) -> Decimal:
        args = {"forward": f, "strike": k, "vol": s, "expiry_days": t} | change
        return black76_value(o.option_type, **args)

    assert close((v(forward=f + h) - v(forward=f - h)) / (2 * h), g.delta, scale=1e-6)
    second = (v(forward=f + h) - 2 * v() + v(forward=f - h)) / (h * h)
    assert abs(second - g.gamma) <= D("1e-6") * (g.gamma + 1 / (f * s * years(t).sqrt()))
    dv = D("1e-9")
    assert close((v(vol=s + dv) - v(vol=s - dv)) / (2 * dv) / 100, g.vega, scale=1e-4 * float(f))
    dt = t * D("1e-9")
    decay = -(v(expiry_days=t + dt) - v(expiry_days=t - dt)) / (2 * dt)
    assert close(decay, g.theta, scale=1e-4 * float(f))


@settings(max_examples=40, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(option_inputs)
def test_vector_black76_matches_the_reference(o):
    g = black76(o.option_type, o.underlying_price, o.strike, o.implied_vol, o.expiry_days)
    v = options_vector.black76(
        np.array([o.option_type == "call"]),
        np.array([float(o.underlying_price)]),
        np.array([float(o.strike)]),
        np.array([float(o.implied_vol)]),
        np.array([float(o.expiry_days)]),
    )
    f, root_t = float(o.underlying_price), math.sqrt(float(o.expiry_days) / 365)
    sigma = float(o.implied_vol)
    assert close(v.value[0], g.value, scale=f)
    assert close(v.delta[0], g.delta, scale=1)
    assert close(v.gamma[0], g.gamma, scale=1 / (f * sigma * root_t))
    assert close(v.vega[0], g.vega, scale=f * root_t / 100)
    assert close(v.theta[0], g.theta, scale=f * sigma / root_t / 365)


# --- the grid -----------------------------------------------------------------------------------


def test_grid_is_paradex_table():
    """docs.paradex.trade, "Portfolio margin": 16 regular scenarios of weight 1 and 8 tail
    scenarios, every tail one with vol +40 %."""
    regular = [s for s in GRID if s.weight == 1]
    tail = [(s.spot_shock, s.weight) for s in GRID if s.weight != 1]
    assert len(GRID) == 24 and len(regular) == 16
    assert sorted({s.spot_shock for s in regular}) == [
        D(x) for x in ("-0.16", "-0.12", "-0.08", "-0.04", "0", "0.04", "0.08", "0.12", "0.16")
    ]
    assert {s.vol_shock for s in regular if abs(s.spot_shock) == D("0.16")} == {D("0.40")}
    assert sorted(tail) == sorted(
        (D(x), D(w))
        for x, w in (
            ("-0.66", "0.24"),
            ("-0.33", "0.48"),
            ("0.50", "0.32"),
            ("1.00", "0.16"),
            ("2.00", "0.08"),
            ("3.00", "0.0533"),
            ("4.00", "0.04"),
            ("5.00", "0.032"),
        )
    )
    assert all(s.vol_shock == D("0.40") for s in GRID if s.weight != 1)


def test_vol_shock_scales_with_time_to_expiry():
    # 7 days: (30/7)^0.30 = 1.5474…; 90 days: (30/90)^0.13 = 0.8667…; under a day as one day.
    assert close(shocked_vol(D("0.5"), D("0.40"), D(7)), 0.5 * (1 + 0.4 * (30 / 7) ** 0.30))
    assert close(shocked_vol(D("0.5"), D("-0.22"), D(90)), 0.5 * (1 - 0.22 * (30 / 90) ** 0.13))
    assert shocked_vol(D("0.5"), D("0.40"), D("0.25")) == shocked_vol(D("0.5"), D("0.40"), D(1))
    assert close(shocked_vol(D("0.5"), D("0.40"), D(30)), 0.5 * 1.4)


def test_min_delta_risk_paradex_worked_example():
    """docs.paradex.trade, "Portfolio margin", minimum delta requirement: long 1 BTC perp and
    short 5 calls of delta 0.3 at 70,000: net −0.5, hedged 1.0, (2 % × 0.5 + 1 % × 1.0) ×
    70,000 = 1,400."""
    spot = D(70000)
    assert min_delta_risk([1 * spot, -5 * D("0.3") * spot]) == D(1400)


def test_short_strangle_worst_is_the_five_fold_tail():
    """Short 2 calls 100k and 2 puts 90k, 30 days, BTC at 95k: at +500 % (weight 0.032) the
    call is worth its intrinsic 470,000 (time value below 1e-9 at σ' = 0.77) and the put
    nothing; that loss, weighted, beats every regular scenario."""
    call = option("C", strike="100000", quantity="2")
    put = option("P", option_type="put", strike="90000", vol="0.60", quantity="2")
    risk = underlying_risk("BTC", [call, put], [])
    c, p = value_of(call), value_of(put)
    hand = D("0.032") * (2 * (D(570000) - D(100000) - c) - 2 * p)
    assert risk.worst_scenario == 23
    assert close(risk.scan_risk, hand)
    assert risk.initial_margin == risk.scan_risk
    # Regular +16 %: both legs' changes at F' = 110,200 and vol +40 %.
    up = next(s for s in GRID if s.spot_shock == D("0.16"))
    hand_up = 2 * (value_of(call, spot_shock=up.spot_shock, vol=D("0.55") * D("1.4")) - c) + 2 * (
        value_of(put, spot_shock=up.spot_shock, vol=D("0.60") * D("1.4")) - p
    )
    assert close(risk.losses[GRID.index(up)], hand_up)


def test_covered_call_binds_on_the_crash():
    """Long 1 BTC perp at 95k, short 1 call 100k: at −66 % (weight 0.24) the perp loses
    62,700 and the call's premium is kept (it is worth next to nothing at 32,300)."""
    perp = btc_perp(quantity="1", entry="95000", mark="95000")
    call = option("C", strike="100000")
    risk = underlying_risk("BTC", [call], [perp])
    c = value_of(call)
    crash = value_of(call, spot_shock=D("-0.66"), vol=D("0.55") * D("1.4"))
    hand = D("0.24") * (D("62700") - (c - crash))
    assert GRID[risk.worst_scenario].spot_shock == D("-0.66")
    assert close(risk.scan_risk, hand)
    # The call caps the upside: from +50 % on every tail scenario gains the same, the perp's
    # move above the strike less the call's, weighted.
    for scenario, loss in zip(GRID, risk.losses, strict=True):
        if scenario.spot_shock >= D("0.5"):
            assert loss < 0


def test_calendar_spread_shocks_each_expiry_by_its_own_vol_scale():
    """Short a 7-day ATM call, long a 60-day ATM call: vol +40 % lifts the front leg's vol by
    40 % × (30/7)^0.30 = 61.9 % and the back leg's by 40 % × (30/60)^0.13 = 36.6 %. Each
    scenario's loss is the two legs' changes, computed here leg by leg; the scan risk is the
    largest."""
    front = option("F", strike="95000", days="7", vol="0.5", side=-1)
    back = option("B", strike="95000", days="60", vol="0.5", side=1)
    risk = underlying_risk("BTC", [front, back], [])
    front_up = shocked_vol(D("0.5"), D("0.40"), D(7))
    back_up = shocked_vol(D("0.5"), D("0.40"), D(60))
    assert round(front_up / D("0.5") - 1, 4) == D("0.6190")
    assert round(back_up / D("0.5") - 1, 4) == D("0.3655")
    for scenario, loss in zip(GRID, risk.losses, strict=True):
        vol_front = shocked_vol(D("0.5"), scenario.vol_shock, D(7))
        vol_back = shocked_vol(D("0.5"), scenario.vol_shock, D(60))
        expected = scenario.weight * (
            (value_of(front, spot_shock=scenario.spot_shock, vol=vol_front) - value_of(front))
            - (value_of(back, spot_shock=scenario.spot_shock, vol=vol_back) - value_of(back))
        )
        assert close(loss, expected, scale=95000)
    assert risk.scan_risk == max(max(risk.losses), 0) > 0
    # A long calendar loses when vol falls at an unchanged price: the back leg's larger vega.
    flat_down = next(s for s in GRID if s.spot_shock == 0 and s.vol_shock < 0)
    assert risk.losses[GRID.index(flat_down)] > 0


def test_delta_hedged_straddle_pays_the_delta_floor_only_on_its_hedge():
    """Long 1 call and 1 put at the money, hedged by a short perp of the straddle's delta: net
    delta 0, so the delta floor is 1 % of the hedged delta × F, the hedged delta being the
    call's (long) matched by the put's and the perp's (short); the scan risk is the vol crush
    at an unchanged price (a long straddle gains from any move)."""
    call = option("C", strike="95000", side=1)
    put = option("P", option_type="put", strike="95000", side=1)
    call_delta = black76("call", D(95000), D(95000), D("0.55"), D(30)).delta
    straddle_delta = call_delta + black76("put", D(95000), D(95000), D("0.55"), D(30)).delta
    hedge = btc_perp(side=-1, quantity=str(straddle_delta), entry="95000", mark="95000")
    risk = underlying_risk("BTC", [call, put], [hedge])
    assert abs(risk.net_delta) < D("1e-40")
    assert close(risk.min_delta_risk, D("0.01") * call_delta * 95000)
    crush = D("0.55") * (1 - D("0.22"))
    hand = -(value_of(call, vol=crush) - value_of(call) + value_of(put, vol=crush) - value_of(put))
    flat_down = next(s for s in GRID if s.spot_shock == 0 and s.vol_shock < 0)
    assert GRID[risk.worst_scenario] == flat_down
    assert close(risk.scan_risk, hand)
    assert risk.initial_margin == max(risk.scan_risk, risk.min_delta_risk)


def test_portfolio_figures_sum_underlyings_and_halve_for_maintenance():
    btc = option("C", strike="100000")
    eth = option("E", strike="4000", forward="3500", underlying="ETH", vol="0.7")
    grid = portfolio_margin([btc, eth], [btc_perp(quantity="0.1", entry="95000", mark="95000")])
    assert [r.underlying for r in grid.underlyings] == ["BTC", "ETH"]
    assert grid.initial_margin == sum(r.initial_margin for r in grid.underlyings)
    assert grid.maintenance_margin == grid.initial_margin / 2


def test_account_with_options_is_margined_by_the_grid():
    o = option("C", strike="100000", quantity="2", entry="2900")
    account = AccountInput(collateral=(usdt("50000"),), positions=(btc_perp(),), options=(o,))
    quote = quote_account(account)
    mark = value_of(o)
    assert close(quote.options[0].unrealized_pnl, -2 * (mark - D(2900)))
    assert close(quote.margin_balance, D(50000) + quote.options[0].unrealized_pnl)
    assert quote.maintenance_margin == quote.portfolio.maintenance_margin
    assert quote.initial_margin == quote.portfolio.initial_margin
    assert close(quote.margin_ratio, quote.maintenance_margin / quote.margin_balance)
    assert quote.positions[0].liquidation_price is None


# --- the quote format ---------------------------------------------------------------------------


def test_command_line_answers_the_options_md_example(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(option_request(OPTIONS_MD_ROW)))
    run = run_python("-m", "margin.engine", "quote", str(path))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    row = answer["positions"][0]
    expected = black76("call", D(95000), D(100000), D("0.55"), D(30))
    assert D(row["mark_price"]) == expected.value
    for name in ("delta", "gamma", "vega", "theta"):
        assert D(row[name]) == getattr(expected, name), name
    assert D(row["unrealized_pnl"]) == -2 * (expected.value - 2900)
    assert D(row["position_delta"]) == -2 * expected.delta
    account = answer["account"]
    grid = portfolio_margin([option(strike="100000", quantity="2", entry="2900")], [])
    assert D(account["scan_risk"]["BTC"]) == grid.underlyings[0].scan_risk
    assert D(account["min_delta_risk"]["BTC"]) == grid.underlyings[0].min_delta_risk
    assert D(account["portfolio_initial_margin"]) == grid.initial_margin
    assert D(account["portfolio_maintenance_margin"]) == grid.maintenance_margin
    assert account["maintenance_margin"] == account["portfolio_maintenance_margin"]
    assert D(account["margin_balance"]) == 50000 + D(row["unrealized_pnl"])


def test_portfolio_scheme_without_options_runs_the_grid(tmp_path):
    perp = {
        "id": "BTCUSDT",
        "underlying": "BTC",
        "side": "long",
        "quantity": "1",
        "entry_price": "95000",
        "mark_price": "95000",
        "leverage": "10",
        "brackets": [{"floor": "0", "mmr": "0.004", "max_leverage": "125"}],
    }
    run = run_python("-m", "margin.engine", "quote", "-", stdin=json.dumps(option_request(perp)))
    standard = json.loads(run.stdout)["account"]
    run = run_python(
        "-m",
        "margin.engine",
        "quote",
        "-",
        stdin=json.dumps(option_request(perp, margin_scheme="portfolio")),
    )
    portfolio = json.loads(run.stdout)["account"]
    assert D(standard["maintenance_margin"]) == D(380)  # 95,000 × 0.4 %
    # −16 % at weight 1 (15,200) beats −66 % at 0.24 (15,048): IM 15,200, MM 7,600.
    assert D(portfolio["scan_risk"]["BTC"]) == D(15200)
    assert D(portfolio["maintenance_margin"]) == D(7600)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"margin_mode": "isolated"}, "account.positions[0].margin_mode", "cannot be isolated"),
        ({"strike": "-1"}, "account.positions[0].strike", "positive"),
        ({"implied_vol": "0"}, "account.positions[0].implied_vol", "positive"),
        ({"expiry_days": "0"}, "account.positions[0].expiry_days", "positive"),
        ({"option_type": "straddle"}, "account.positions[0].option_type", "call, put"),
        ({"strike": 100000}, "account.positions[0].strike", "decimal string"),
        ({"underlying": None}, "account.positions[0].underlying", "non-empty string"),
    ],
)
def test_bad_option_input_exits_2_naming_the_field(change, field, words):
    row = OPTIONS_MD_ROW | change
    run = run_python("-m", "margin.engine", "quote", "-", stdin=json.dumps(option_request(row)))
    assert run.returncode == 2
    assert run.stderr.startswith(field), run.stderr
    assert words in run.stderr


def test_missing_option_field_and_repeated_id_are_refused():
    row = {k: v for k, v in OPTIONS_MD_ROW.items() if k != "implied_vol"}
    run = run_python("-m", "margin.engine", "quote", "-", stdin=json.dumps(option_request(row)))
    assert run.returncode == 2 and run.stderr.startswith("account.positions[0].implied_vol")
    run = run_python(
        "-m",
        "margin.engine",
        "quote",
        "-",
        stdin=json.dumps(option_request(OPTIONS_MD_ROW, OPTIONS_MD_ROW)),
    )
    assert run.returncode == 2 and run.stderr.startswith("account.positions[1].id")
    run = run_python(
        "-m",
        "margin.engine",
        "quote",
        "-",
        stdin=json.dumps(option_request(OPTIONS_MD_ROW, margin_scheme="tiered")),
    )
    assert run.returncode == 2 and run.stderr.startswith("account.margin_scheme")


def test_explain_shows_the_option_mark_and_the_grid_with_its_numbers():
    o = option("C", strike="100000", quantity="2", entry="2900")
    account = AccountInput(collateral=(usdt("50000"),), positions=(btc_perp(),), options=(o,))
    quote = quote_account(account)
    steps = explain_account(account, quote)
    assert assert_steps_add_up(steps) > 0
    mark_steps = steps["positions.C.mark_price"]
    assert mark_steps[-1].result == quote.options[0].mark_price
    requirement = steps["account.maintenance_margin"]
    assert requirement[-1].result == quote.maintenance_margin
    assert "scenario" in requirement[0].figure
    assert steps["account.unrealized_pnl"][0].result == quote.unrealized_pnl


def test_explain_takes_an_option_apart_into_black76_and_each_greek():
    # a 7-day put: every Greek's last step is the quote's own figure, and black76's
    o = option("P", option_type="put", strike="90000", days="7", side=1, entry="800")
    account = AccountInput(collateral=(usdt("50000"),), options=(o,))
    quote = quote_account(account)
    steps = explain_account(account, quote)
    assert assert_steps_add_up(steps) > 0
    expected = black76("put", D(95000), D(90000), D("0.55"), D(7))
    (row,) = quote.options
    for name in ("mark_price", "delta", "gamma", "vega", "theta"):
        last = steps[f"positions.P.{name}"][-1]
        assert last.result == getattr(row, name)
        assert last.result == getattr(expected, "value" if name == "mark_price" else name)
    figures = {step.figure.split(" ")[0]: step.result for step in steps["positions.P.mark_price"]}
    assert figures["F"] == D(95000) and figures["K"] == D(90000) and figures["σ"] == D("0.55")
    assert figures["T"] == D(7) / 365 and figures["r"] == 0
    d1 = figures["d1"]
    assert figures["N(d1)"] == normal_cdf(d1) and figures["d2"] < d1


def test_explain_lists_the_grid_scenarios_the_binding_one_and_the_delta_floor():
    # a short strangle beside a long perpetual on the same underlying (Paradex's method)
    call = option("C", strike="105000", quantity="2")
    put = option("P", option_type="put", strike="85000", quantity="2")
    perp = btc_perp()
    account = AccountInput(collateral=(usdt("80000"),), positions=(perp,), options=(call, put))
    quote = quote_account(account)
    steps = explain_account(account, quote, position_names={"C": "BTC-C", "P": "BTC-P"})
    assert assert_steps_add_up(steps) > 0
    (risk,) = quote.portfolio.underlyings
    scan = steps["grid.BTC.scan_risk"]
    assert [step.result for step in scan[:-1]] == list(risk.losses) and len(scan) == 25
    assert set(scan[0].inputs) == {"BTC-C", "BTC-P", perp.id, "weight"}
    (binding,) = [step for step in scan if "(binds)" in step.figure]
    assert binding is scan[risk.worst_scenario] and scan[-1].result == risk.scan_risk
    floor = steps["grid.BTC.min_delta_risk"]
    assert floor[-1].result == risk.min_delta_risk
    assert floor[-1].inputs["net_rate"] == D("0.02") and floor[-1].inputs["hedged_rate"] == D(
        "0.01"
    )
    requirement = steps["account.maintenance_margin"]
    assert requirement[-2].result == quote.portfolio.initial_margin == risk.initial_margin
    assert requirement[-1].result == quote.maintenance_margin == risk.initial_margin / 2
    assert steps["grid.BTC.initial_margin"][-1].result == max(risk.scan_risk, risk.min_delta_risk)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option_books())
def test_random_option_books_explain_their_grid_consistently(books):
    for account in books:
        quote = quote_account(account)
        steps = explain_account(account, quote)
        assert_steps_add_up(steps)
        for risk in quote.portfolio.underlyings if quote.portfolio else ():
            scan = steps[f"grid.{risk.underlying}.scan_risk"]
            assert [step.result for step in scan[:-1]] == list(risk.losses)
            assert steps[f"grid.{risk.underlying}.min_delta_risk"][-1].result == (
                risk.min_delta_risk
            )

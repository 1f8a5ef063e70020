"""Every explained step is arithmetic that gives its figure, written so a reader can follow."""

import re
from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings

from margin.engine.explain import Step, explain_account, explain_stress, render_step
from margin.engine.precision import engine_context
from margin.engine.reference import quote_account
from margin.engine.request import parse_quote_request
from margin.engine.stress import StressModel, account_stress
from margin.engine.types import AccountInput, CollateralLine, PositionInput
from tests.engine.strategies import books
from tests.engine.support import BINANCE_BTC, quote_cases

PLACEHOLDER = re.compile(r"\{([^}]+)\}")
SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-"})


def evaluate(step: Step) -> Decimal | None:
    """The formula's value with its inputs put in, or None when it is not arithmetic."""
    text = PLACEHOLDER.sub(lambda match: f"({step.inputs[match.group(1)]:f})", step.formula)
    text = text.translate(SYMBOLS)
    if re.search(r"[A-Za-z]", re.sub(r"\b(max|min)\(", "", text)):
        return None
    text = re.sub(r"(\d+(\.\d*)?)", r"Decimal('\1')", text)
    with engine_context():
        return eval(text, {"Decimal": Decimal, "max": max, "min": min})


def assert_steps_add_up(steps: dict[str, list[Step]]) -> int:
    """Check every arithmetic step; return how many there were."""
    checked = 0
    for key, figure_steps in steps.items():
        for step in figure_steps:
            assert set(PLACEHOLDER.findall(step.formula)) <= step.inputs.keys(), key
            # A figure the engine leaves undefined (a ratio over a balance of 0) has nothing to
            # add up to, and its formula may divide by 0.
            if step.result is None:
                continue
            value = evaluate(step)
            if value is None:
                continue
            tolerance = Decimal("1e-30") * max(1, abs(step.result))
            assert abs(value - step.result) <= tolerance, (key, render_step(step))
            checked += 1
    return checked


def test_published_cases_explain_every_figure():
    for case in quote_cases().values():
        account = parse_quote_request(case["request"])
        steps = explain_account(account)
        assert assert_steps_add_up(steps) >= 5
        for position in account.positions:
            for figure in (
                "notional",
                "maintenance_margin",
                "initial_margin",
                "unrealized_pnl",
                "liquidation_price",
                "bankruptcy_price",
            ):
                assert steps[f"positions.{position.id}.{figure}"]


def test_rendering_reads_like_the_venue_formula():
    step = Step(
        "MM",
        "{notional} × {mmr} − {cum}",
        {"notional": Decimal("92150"), "mmr": Decimal("0.005"), "cum": Decimal("50")},
        Decimal("410.75"),
    )
    assert render_step(step) == "MM = notional 92,150.00 × mmr 0.005 − cum 50.00 = 410.75"


def test_positions_named_by_database_ids_render():
    # given: positions whose ids are numbers, as the database gives them
    request = quote_cases()["faq_btc_short"]["request"]
    for n, position in enumerate(request["account"]["positions"], start=1):
        position["id"] = str(n)
    steps = explain_account(parse_quote_request(request))
    # when
    lines = [render_step(step) for figure in steps.values() for step in figure]
    # then
    assert "cross MM = 1 1.30 + 2 0.1890306 = 1.4890306" in lines


def test_re_solved_bracket_is_explained():
    account = parse_quote_request(quote_cases()["bybit_mm"]["request"])
    steps = explain_account(account)["positions.XYZ.liquidation_price"]
    assert any(step.figure == "bracket at liquidation" and step.result == 3 for step in steps)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(max_accounts=2))
def test_random_accounts_explain_consistently(market_and_accounts):
    _, accounts = market_and_accounts
    for account in accounts:
        assert_steps_add_up(explain_account(account, quote_account(account)))


def test_the_stress_loss_and_risk_requirement_are_explained_and_add_up():
    # given: BTC collateral and a long, an ETH short (a partial hedge), BTC's σ known
    account = AccountInput(
        collateral=(
            CollateralLine(asset="USDT", quantity=Decimal(20_000), price=Decimal(1)),
            CollateralLine(asset="BTC", quantity=Decimal("0.5"), price=Decimal(60_000)),
        ),
        positions=(
            PositionInput(
                id="BTCUSDT",
                side=1,
                quantity=Decimal(1),
                entry_price=Decimal(58_000),
                mark_price=Decimal(60_000),
                leverage=Decimal(10),
                brackets=BINANCE_BTC,
                underlying="BTC",
            ),
            PositionInput(
                id="ETHUSDT",
                side=-1,
                quantity=Decimal(10),
                entry_price=Decimal(3_000),
                mark_price=Decimal(3_100),
                leverage=Decimal(10),
                brackets=BINANCE_BTC,
                underlying="ETH",
            ),
        ),
    )
    covariance = np.array([[0.03**2, 0.8 * 0.03 * 0.04], [0.8 * 0.03 * 0.04, 0.04**2]])
    model = StressModel.build(
        ("BTC", "ETH", "USDT"),
        np.array([0.03, 0.04, 0.0005]),
        estimated_vol=np.array([0.03, 0.04, np.nan]),
        estimated_covariance=np.pad(covariance, ((0, 1), (0, 1)), constant_values=np.nan),
        k=3.0,
    )
    # when
    steps = explain_stress(account, model)
    # then: each arithmetic step adds up, and the last ones are account_stress's figures
    stress = account_stress(account, model)
    assert assert_steps_add_up(steps) >= 5
    assert steps["account.stress_loss"][-1].result == stress.worst_loss
    assert steps["account.risk_requirement"][-1].result == stress.risk_requirement
    figures = [step.figure for step in steps["account.stress_loss"]]
    assert figures[:2] == ["exposure to BTC", "exposure to ETH"]
    assert any("hedges credited" in figure for figure in figures)
    assert any(figure.startswith("worst named scenario") for figure in figures)

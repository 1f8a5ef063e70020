"""The state thresholds: the Decimal `level` and the vector `levels` follow one rule, and
`next_levels` adds hysteresis and bankruptcy on top."""

from decimal import Decimal

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from margin.engine.states import (
    BANKRUPT,
    HEALTHY,
    LEVEL,
    LIQUIDATION,
    MARGIN_CALL,
    STATES,
    WARNING,
    Thresholds,
    next_levels,
)

D = Decimal
LINES = Thresholds(
    warning=D("0.7"), margin_call=D("0.85"), liquidation=D("1"), hysteresis=D("0.05")
)
ratios = st.none() | st.decimals(min_value=0, max_value=3, places=6)


@given(ratios, st.booleans())
def test_the_vector_levels_agree_with_the_reference(ratio, at_risk):
    vector = LINES.levels(
        np.array([np.nan if ratio is None else float(ratio)]), at_risk=np.array([at_risk])
    )
    assert STATES[vector[0]] == LINES.level(ratio, at_risk=at_risk)


def test_a_ratio_on_a_line_is_in_the_worse_state():
    assert LINES.level(D("0.7")) == WARNING
    assert LINES.level(D("0.85")) == MARGIN_CALL
    assert LINES.level(D("1")) == LIQUIDATION
    assert LINES.level(D("0.69")) == HEALTHY


def test_no_ratio_is_past_liquidation_when_at_risk_and_healthy_when_not():
    assert LINES.level(None, at_risk=True) == LIQUIDATION
    assert LINES.level(None, at_risk=False) == HEALTHY


def test_next_levels_keeps_a_state_within_the_hysteresis_and_marks_the_bankrupt():
    current = np.array([LEVEL[MARGIN_CALL], LEVEL[MARGIN_CALL], LEVEL[HEALTHY], LEVEL[HEALTHY]])
    levels = next_levels(
        current,
        margin_ratio=np.array([0.82, 0.79, np.nan, np.nan]),
        margin_balance=np.array([100.0, 100.0, 0.0, -1.0]),
        maintenance_margin=np.array([82.0, 79.0, 0.0, 5.0]),
        thresholds=LINES,
    )
    # 0.82 is within 0.05 of the margin-call line: kept; 0.79 is not: back to warning; an
    # empty account with nothing at risk is healthy; a negative balance is bankrupt
    assert [STATES[n] for n in levels] == [MARGIN_CALL, WARNING, HEALTHY, BANKRUPT]


def test_thresholds_of_a_version_read_its_ratios_as_decimals():
    class Version:
        warning_ratio = 0.7
        margin_call_ratio = D("0.85")
        liquidation_ratio = D("1")
        hysteresis = D("0.05")

    assert Thresholds.of(Version()) == LINES

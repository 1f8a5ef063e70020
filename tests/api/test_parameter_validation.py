"""A parameter version that would halt the engine or that the database cannot store is refused
with a 400 naming the field, at proposal and at approval (issue 15 item 3: each was accepted
and approval answered 500 on the numbers too large to store)."""

import pytest
from django.urls import reverse

from margin.errors import ApplicationError
from margin.models import ParameterVersion, Proposal
from margin.selectors.book import desk_book, held_options
from margin.selectors.parameters import parameters_in_force
from margin.services.parameters import _trial_tick
from margin.services.proposals import proposal_create
from tests.api.conftest import post
from tests.api.test_desk import leveraged  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

REPROS = {
    "stress_k_sigma = 0": ({"fields": {"stress_k_sigma": "0"}}, "stress_k_sigma"),
    "horizon 0": ({"fields": {"stress_horizon_days": "0"}}, "stress_horizon_days"),
    "target ratio 0": ({"fields": {"liquidation_target_ratio": "0"}}, "liquidation_target_ratio"),
    "liquidation ratio above the target, target above 1": (
        {"fields": {"liquidation_ratio": "1.5", "liquidation_target_ratio": "1.2"}},
        "liquidation_target_ratio",
    ),
    "IM below MM": (
        {"brackets": {"BTCUSDT": [{"floor": "0", "mmr": "0.02", "max_leverage": "125"}]}},
        "brackets.BTCUSDT[0].max_leverage",
    ),
    "haircut ratios rising with size": (
        {"haircuts": {"BTC": [{"floor": "0", "ratio": "0.8"}, {"floor": "1000", "ratio": "0.9"}]}},
        "haircuts.BTC[1].ratio",
    ),
    "stress_k_sigma 1e11": ({"fields": {"stress_k_sigma": "1e11"}}, "stress_k_sigma"),
    "guard age 99,999,999,999 s": (
        {"fields": {"price_guard_max_age_s": "99999999999"}},
        "price_guard_max_age_s",
    ),
    "max leverage 99,999,999,999": (
        {"brackets": {"BTCUSDT": [{"floor": "0", "mmr": "0.004", "max_leverage": "99999999999"}]}},
        "brackets.BTCUSDT[0].max_leverage",
    ),
}


@pytest.mark.parametrize("name", sorted(REPROS))
def test_issue_repro_is_refused_at_proposal(officer_api, leveraged, name):  # noqa: F811
    change, field = REPROS[name]
    key = "".join(c for c in name if c.isalnum())[:40]
    # when: previewed, then proposed
    previewed = post(
        officer_api,
        reverse("api:desk-parameter-change"),
        {**change, "reason": "x", "dry_run": True},
        f"pv-{key}",
    )
    proposed = post(
        officer_api, reverse("api:desk-parameter-change"), {**change, "reason": "x"}, f"p-{key}"
    )
    # then: a 400 naming the field, and nothing proposed
    for response in (previewed, proposed):
        assert response.status_code == 400, response.content
        errors = response.json()["errors"]
        # named by the column's bound (`fields.<name>`, `brackets.X.0.<name>`) or by the
        # engine's rule (`<name>`, `brackets.X[0].<name>`)
        named = {key.replace("[", ".").replace("]", "") for key in errors}
        wanted = field.replace("[", ".").replace("]", "")
        assert any(key == wanted or key.endswith(f".{wanted}") for key in named), errors
    assert not Proposal.objects.exists()


def test_a_proposal_recorded_before_the_validator_is_refused_at_approval(
    officer,
    manager_api,
    leveraged,  # noqa: F811
):
    # given: a proposal whose payload never went through the validator (as one recorded before
    # it existed); approving it answered 500 when the version row could not hold 1e11
    proposal = proposal_create(
        kind=Proposal.Kind.PARAMETER_CHANGE,
        payload={"fields": {"stress_k_sigma": "1e11"}},
        reason="old",
        proposer=officer,
    )
    versions = ParameterVersion.objects.count()
    # when
    response = post(
        manager_api, reverse("api:desk-proposal-approve", args=[proposal.pk]), {}, "ap-old"
    )
    # then
    assert response.status_code == 400, response.content
    assert "stress_k_sigma" in response.json()["errors"]
    assert ParameterVersion.objects.count() == versions


def test_the_trial_tick_refuses_a_version_under_which_the_stress_run_raises(leveraged):  # noqa: F811
    # given: the version in force with k σ = 0 (the validator refuses it; here it is run past
    # the validator, straight into the trial tick on a copy of the book)
    version = parameters_in_force()
    broken = ParameterVersion(
        **{f.name: getattr(version, f.name) for f in ParameterVersion._meta.concrete_fields}
    )
    broken.stress_k_sigma = 0
    book_slice = desk_book()
    # when / then: the stress path of the tick raises, and the trial says so
    with pytest.raises(ApplicationError, match="breaks a revaluation"):
        _trial_tick(
            book_slice.book, book_slice, version, broken, floors={}, held=held_options(book_slice)
        )

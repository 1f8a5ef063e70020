import pytest
from django.core.management import call_command
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from margin.api.problems import problem_type


def test_the_schema_validates_without_a_single_warning(tmp_path):
    # spectacular exits non-zero (SystemExit) on any warning with --fail-on-warn
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "/api/v1/quote/" in (tmp_path / "s.yml").read_text()


def test_throttle_rates_come_from_settings():
    assert set(api_settings.DEFAULT_THROTTLE_RATES) == {"anon", "user"}


@pytest.mark.django_db
def test_a_user_over_the_rate_gets_a_429_problem_with_retry_after(trader_api, monkeypatch):
    # given: a rate of two calls a minute
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    # when
    answers = [trader_api.get("/api/v1/me/") for _ in range(3)]
    # then
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["type"] == problem_type("throttled")
    assert int(answers[2]["Retry-After"]) > 0

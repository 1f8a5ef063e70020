from datetime import timedelta

import pytest
from django.utils import timezone

from margin.models import Heartbeat


@pytest.mark.django_db
def test_healthz_is_503_while_no_beat_has_run(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["beat"] == "stale"
    assert body["last_beat_age_s"] is None


@pytest.mark.django_db
def test_healthz_is_200_with_a_fresh_beat_and_503_with_a_stale_one(client, settings):
    Heartbeat.objects.create(name="heartbeat", beat_at=timezone.now())
    fresh = client.get("/healthz")
    assert fresh.status_code == 200, fresh.json()
    assert fresh.json()["broker"] == "ok"

    Heartbeat.objects.filter(name="heartbeat").update(
        beat_at=timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_AFTER_S + 5)
    )
    assert client.get("/healthz").status_code == 503


@pytest.mark.django_db
def test_healthz_reports_a_broker_that_is_down(client, settings):
    Heartbeat.objects.create(name="heartbeat", beat_at=timezone.now())
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down"

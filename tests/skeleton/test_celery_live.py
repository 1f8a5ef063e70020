import pytest
from django.core.management import call_command

from margin.models import Heartbeat
from tests.celery_procs import celery_env, celery_process, wait_for

pytestmark = [pytest.mark.celery_live, pytest.mark.django_db(transaction=True)]


def test_real_worker_and_beat_run_the_heartbeat_and_healthz_reports_it(client, tmp_path):
    # given: the schedule in beat's tables, beating every second
    env = celery_env(HEARTBEAT_INTERVAL_S="1")
    call_command("sync_schedule", verbosity=0)
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    assert client.get("/healthz").status_code == 503
    # when
    with (
        celery_process(
            "worker", "--concurrency=1", "--pool=solo", "-l", "INFO", env=env, log=worker_log
        ),
        celery_process(
            "beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule"), env=env, log=beat_log
        ),
    ):
        first = wait_for(
            lambda: Heartbeat.objects.filter(name="heartbeat").first(),
            timeout=60,
            what="a first heartbeat",
            logs=(worker_log, beat_log),
        )
        wait_for(
            lambda: Heartbeat.objects.get(name="heartbeat").beat_at > first.beat_at,
            timeout=30,
            what="a second heartbeat",
            logs=(worker_log, beat_log),
        )
        response = client.get("/healthz")
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["beat"] == "ok" and body["broker"] == "ok" and body["database"] == "ok"
    assert body["last_beat_age_s"] < 10

"""The process runner (exchange_site/runner.py, supervisord from the Procfile) brings a killed
worker back: honcho, before it, stopped the whole demo when one process died."""

import os
import re
import signal
import subprocess
import sys

import pytest

from margin.models import Heartbeat
from margin.tasks import heartbeat
from tests.celery_procs import ROOT, celery_env, wait_for

pytestmark = [pytest.mark.celery_live, pytest.mark.django_db(transaction=True)]


def running_pid(var, env, name: str) -> int | None:
    status = subprocess.run(
        [sys.executable, "-m", "exchange_site.runner", "--var", str(var), "--ctl", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(rf"^{name}\s+RUNNING\s+pid (\d+)", status, re.MULTILINE)
    return int(found.group(1)) if found else None


def test_a_worker_killed_under_the_runner_comes_back_and_runs_tasks(tmp_path):
    # given: the Procfile's worker under the runner, on the test database and broker
    worker_line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")
    )
    procfile = tmp_path / "Procfile"
    procfile.write_text(worker_line + "\n")
    env = celery_env(CELERY_WORKER_CONCURRENCY="1")
    log = tmp_path / "runner.log"
    with log.open("w") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "exchange_site.runner", str(procfile), "--var", str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        first = wait_for(
            lambda: running_pid(tmp_path, env, "worker"),
            timeout=120,
            what="the worker running",
            logs=(log,),
        )
        # when: the worker is SIGKILLed
        os.kill(first, signal.SIGKILL)
        # then: the runner starts a new one, which takes tasks
        second = wait_for(
            lambda: (pid := running_pid(tmp_path, env, "worker")) != first and pid,
            timeout=120,
            what="a new worker",
            logs=(log,),
        )
        heartbeat.delay()
        wait_for(
            lambda: Heartbeat.objects.filter(name="heartbeat").exists(),
            timeout=120,
            what="the new worker's heartbeat",
            logs=(log,),
        )
        assert second != first
        assert re.search(r"exited: worker \(terminated by SIGKILL; not expected\)", log.read_text())
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()

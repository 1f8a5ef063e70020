"""The gunicorn configuration (exchange_site/gunicorn.conf.py) spreads requests over its
processes: a process whose threads are all busy takes no new connection, so a request never
queues behind another in one process while a second process is idle.

With keep-alive, each of `make loadtest`'s traders kept the connection a process had accepted
first: 60, 54, 61, 10 and 15 of 200 on the five processes, the busy three queueing their
pollers' requests while the other two had little to do."""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from tests.celery_procs import ROOT
from tests.skeleton.gunicorn_probe_app import SLOW_S


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_process_busy_with_a_request_takes_no_other(tmp_path):
    # given: the project's gunicorn configuration, 2 processes of one thread each
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "1"}
    command = [
        sys.executable, "-m", "gunicorn", "--config", "exchange_site/gunicorn.conf.py",
        "tests.skeleton.gunicorn_probe_app",
    ]  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        slow = {}
        holder = threading.Thread(
            target=lambda: slow.update(pid=httpx.get(f"{base}/slow", timeout=10).text)
        )
        # when: one process is held by a slow request and quick ones come on new connections
        holder.start()
        time.sleep(0.5)
        answered = []
        for _ in range(8):
            started = time.monotonic()
            pid = httpx.get(base, timeout=10).text
            answered.append((pid, time.monotonic() - started))
        holder.join()
        # then: the other process answered each of them at once
        assert all(pid != slow["pid"] for pid, _ in answered), answered
        assert max(took for _, took in answered) < SLOW_S / 2, answered
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

"""Forked shard workers (bench_revaluation, Celery's prefork pool) after the parent closed its
connections and pool: each child talks on a connection of its own. Run in a fresh interpreter,
as a worker or the benchmark is, not inside a test process whose other threads (a live server,
an xdist channel) hold connections of the shared pool."""

import subprocess
import sys

import pytest
from django.db import connection

from tests.celery_procs import celery_env
from tests.engine.support import REPOSITORY

PROBE = """
import multiprocessing, os
from concurrent.futures import ProcessPoolExecutor
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
django.setup()
from django.db import connection
from margin.db import connections_close_before_fork

def backend_and_answer(n):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), %s + 1", [n])
        return cursor.fetchone()

parent = backend_and_answer(0)[0]
connections_close_before_fork()
with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
    answers = list(pool.map(backend_and_answer, range(20), timeout=60))
assert [answer for _, answer in answers] == list(range(1, 21)), answers
assert parent not in {backend for backend, _ in answers}
assert backend_and_answer(41)[1] == 42
print("ok")
"""


@pytest.mark.django_db(transaction=True)
def test_workers_forked_after_the_pool_is_closed_each_talk_on_their_own_connection():
    if connection.vendor != "postgresql":
        pytest.skip("the pool and forked shard workers are PostgreSQL's")
    # when a fresh process with the pool configured queries, closes, forks workers that query
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPOSITORY,
        env=celery_env(DATABASE_POOL="true"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then every query got its own answer, on connections of the workers' own
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("ok")

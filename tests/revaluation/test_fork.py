import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from django.db import connection

from margin.db import connections_close_before_fork


def _backend_and_answer(n: int) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), %s + 1", [n])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_workers_forked_after_the_pool_is_closed_each_talk_on_their_own_connection():
    if connection.vendor != "postgresql":
        pytest.skip("the pool and forked shard workers are PostgreSQL's")
    # given a parent that has used its connection (and its pool, where one is configured)
    parent = _backend_and_answer(0)[0]
    # when it closes them and forks workers that query
    connections_close_before_fork()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        answers = list(pool.map(_backend_and_answer, range(20)))
    # then every query got its own answer, on connections of the workers' own
    assert [answer for _, answer in answers] == list(range(1, 21))
    assert parent not in {backend for backend, _ in answers}
    assert _backend_and_answer(41)[1] == 42

"""`make soak` and `make loadtest` start manage.py and the Procfile's processes from the
checkout's root: when the tools moved into margin/bench/ their root silently became margin/,
and both failed at their first step ("can't open file .../margin/manage.py")."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from margin.bench import loadtest, soak
from margin.services.reference import reference_data_ensure
from tests.revaluation.factories import market_prices


def test_the_soak_and_load_tools_start_processes_from_the_checkouts_root():
    for tool in (soak, loadtest):
        assert (tool.PROJECT_ROOT / "manage.py").is_file(), tool.__name__
        assert (tool.PROJECT_ROOT / "Procfile").is_file(), tool.__name__


@pytest.mark.django_db(transaction=True)
def test_the_load_tests_users_are_answered_by_the_pages_they_poll(live_server):
    """The load test's users, made as `make loadtest` makes them, drive the real server for a
    few seconds without an error: its officers once got 403 on every queue page, because the
    desk asks for a second factor and their sessions had none."""
    reference_data_ensure()
    market_prices(at=timezone.now(), BTC=95000, ETH=3400, SOL=230, USDT=1, USDC=1)
    traders, officers = loadtest.users_with_sessions(2, 2)
    record = loadtest.Recorder()
    # In a thread of its own: a browser test earlier in this process leaves Playwright's event
    # loop running in the main thread, where asyncio.run() refuses to start another.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(
            lambda: asyncio.run(loadtest.drive(live_server.url, traders, officers, 6, record))
        ).result()
    assert record.error_samples == []
    # each trader polls its dashboard every 2 s after a random start within the first 2 s
    assert len(record.times_ms["fragment"]) >= 2 * len(traders)
    assert len(record.times_ms["queue"]) >= 2

"""The log an operator reads (settings.LOGGING, exchange_site/log_filters.py): one line per
client error, the periodic jobs' chatter at DEBUG, JSON when LOG_FORMAT=json."""

import io
import json
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from accounts.roles import TRADER

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def console_output():
    """What the console handler writes, while the block runs."""
    handler = next(h for h in logging.getLogger("django").handlers if h.name == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_a_404_logs_one_line_without_a_traceback(client):
    with console_output() as out:
        response = client.get("/no-such-page/")
    assert response.status_code == 404
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert "WARNING django.request Not Found: /no-such-page/" in lines[0]


@pytest.mark.django_db
def test_a_403_logs_one_line_without_a_traceback(client, make_user, password):
    trader = make_user(role=TRADER)
    client.force_login(trader)
    with console_output() as out:
        response = client.get("/desk/")
    assert response.status_code == 403
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "Forbidden" in lines[0], out.getvalue()
    assert "Traceback" not in out.getvalue()


def celery_record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "celery.app.trace", "levelno": level, "levelname": "INFO", "msg": message}
    )


def test_the_market_tick_is_a_debug_line_and_a_liquidation_stays_info():
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    tick = celery_record("Task margin.market_tick[1f2e] succeeded in 0.012s: None")
    liquidation = celery_record("Task margin.liquidation[9a0b] succeeded in 0.2s: None")
    failed_tick = celery_record("Task margin.market_tick[1f2e] raised", logging.ERROR)
    # at INFO (the default) the tick is dropped as a DEBUG line; the others pass
    assert not handler.filter(tick) and tick.levelname == "DEBUG"
    assert handler.filter(liquidation) and liquidation.levelname == "INFO"
    assert handler.filter(failed_tick)
    # with the celery logger at DEBUG, the tick is shown (as DEBUG)
    celery_logger = logging.getLogger("celery.app.trace")
    previous = celery_logger.level
    celery_logger.setLevel(logging.DEBUG)
    try:
        assert handler.filter(celery_record("Task margin.market_tick[2] succeeded"))
    finally:
        celery_logger.setLevel(previous)


def test_log_format_json_writes_one_json_object_a_line():
    env = {**os.environ, "LOG_FORMAT": "json", "PROCESS_TYPE": "worker"}
    script = (
        "import django, logging; django.setup();"
        "logging.getLogger('margin.services.prices').warning('print %s left out', 'BTC')"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "exchange_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    warning = next(line for line in lines if line["logger"] == "margin.services.prices")
    assert warning["level"] == "WARNING"
    assert warning["message"] == "print BTC left out"
    assert warning["process_type"] == "worker"
    assert warning["time"]

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_variables():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x7!" + "k2Pq9vZr" * 8,
        "DJANGO_ALLOWED_HOSTS": "risk.example.com",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_embedded_defaults_without_any_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='exchange_site.settings';"
        "django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split()[-2:] == ["django.db.backends.sqlite3", "embedded://"]


def test_the_embedded_demo_passes_every_system_check():
    """With nothing set (the demo), no check warns: e.g. its healthy accounts' snapshots are
    rewritten before their pages would call them stale (margin.W001)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    result = _manage("check", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_refresh_slower_than_the_stale_limit_is_warned_of(settings):
    from margin.checks import snapshot_refresh_fits

    settings.REVALUATION_INTERVAL_S = 5.0
    settings.SNAPSHOT_STALE_AFTER_S = 30.0
    settings.SNAPSHOT_REFRESH_TICKS = 5
    assert snapshot_refresh_fits(None) == []
    settings.SNAPSHOT_REFRESH_TICKS = 6
    assert [message.id for message in snapshot_refresh_fits(None)] == ["margin.W001"]


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_seed_demo_and_schedule_are_safe_to_run_twice():
    from django_celery_beat.models import PeriodicTask

    from accounts.models import User

    for _ in range(2):
        call_command("seed_demo", verbosity=0)
        call_command("sync_schedule", verbosity=0)
    assert User.objects.filter(username="trader").count() == 1
    assert User.objects.get(username="manager").has_perm("accounts.approve_change")
    assert not User.objects.get(username="officer").has_perm("accounts.approve_change")
    assert PeriodicTask.objects.filter(name="heartbeat").count() == 1

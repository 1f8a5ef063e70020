from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

from exchange_site.celery import app as celery_app
from margin.models import Heartbeat


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def _last_beat_age_s() -> float | None:
    try:
        beat = Heartbeat.objects.filter(name="heartbeat").first()
    except Exception:
        return None
    return None if beat is None else (timezone.now() - beat.beat_at).total_seconds()


def healthz(request):
    """Liveness for operators: database, broker and how long ago the worker ran a beat."""
    database = _database_ok()
    broker = _broker_ok()
    age = _last_beat_age_s() if database else None
    beat_ok = age is not None and age <= settings.HEARTBEAT_STALE_AFTER_S
    healthy = database and broker and beat_ok
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
        "last_beat_age_s": None if age is None else round(age, 3),
        "beat": "ok" if beat_ok else "stale",
    }
    return JsonResponse(body, status=200 if healthy else 503)

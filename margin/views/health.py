from django.conf import settings
from django.http import JsonResponse

from exchange_site.celery import app as celery_app
from margin.selectors.ops import database_answers, last_beat_age_s


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def healthz(request):
    """Liveness for operators: database, broker and how long ago the worker ran a beat."""
    database = database_answers()
    broker = _broker_ok()
    age = last_beat_age_s() if database else None
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

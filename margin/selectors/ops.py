"""What the health check reads: whether the database answers and when the worker last beat."""

from django.db import connection
from django.utils import timezone

from margin.models import Heartbeat


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def last_beat_age_s() -> float | None:
    """Seconds since the worker's last heartbeat; None before the first or when the database
    cannot say."""
    try:
        beat = Heartbeat.objects.filter(name="heartbeat").first()
    except Exception:
        return None
    return None if beat is None else (timezone.now() - beat.beat_at).total_seconds()

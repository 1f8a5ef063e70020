from django.utils import timezone

from margin.models import Heartbeat


def heartbeat_record(*, name: str, worker: str) -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now(), "worker": worker}
    )
    return beat

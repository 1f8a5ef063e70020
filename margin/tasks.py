from celery import shared_task

from margin.services.ops import heartbeat_record


@shared_task(name="margin.heartbeat", ignore_result=True)
def heartbeat() -> None:
    heartbeat_record(name="heartbeat", worker=heartbeat.request.hostname or "")

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from margin.schedule import periodic_jobs


class Command(BaseCommand):
    help = "Write the periodic jobs kept in margin/schedule.py to beat's tables (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        jobs = periodic_jobs()
        for job in jobs:
            # Beat's interval is whole seconds or microseconds; sub-second jobs use the latter.
            every, period = (
                (int(job.every_s), IntervalSchedule.SECONDS)
                if float(job.every_s).is_integer()
                else (int(job.every_s * 1_000_000), IntervalSchedule.MICROSECONDS)
            )
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
            PeriodicTask.objects.update_or_create(
                name=job.name,
                defaults={"task": job.task, "interval": interval, "enabled": True},
            )
        stale = PeriodicTask.objects.exclude(name__in=[job.name for job in jobs]).exclude(
            name__startswith="celery."
        )
        removed, _ = stale.delete()
        self.stdout.write(f"schedule: {len(jobs)} job(s) in place, {removed} stale removed")

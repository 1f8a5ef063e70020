from django.db import models


class Heartbeat(models.Model):
    """One row per periodic job: when a worker last ran it (proves worker and beat are alive)."""

    name = models.CharField(max_length=64, primary_key=True)
    beat_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"

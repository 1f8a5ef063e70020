"""The periodic jobs, kept as code; `manage.py sync_schedule` writes them to beat's tables."""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_s: float


def periodic_jobs() -> list[PeriodicJob]:
    return [
        PeriodicJob("heartbeat", "margin.heartbeat", settings.HEARTBEAT_INTERVAL_S),
        PeriodicJob("market tick", "margin.market_tick", settings.MARKET_TICK_INTERVAL_S),
        PeriodicJob("revaluation", "margin.revaluation_tick", settings.REVALUATION_INTERVAL_S),
        PeriodicJob("revaluation prune", "margin.revaluation_prune", settings.PRUNE_INTERVAL_S),
        PeriodicJob("desk proposals expiry", "margin.desk_proposals_expire", 60),
        PeriodicJob("recalibration", "margin.recalibration", settings.RECALIBRATION_INTERVAL_S),
    ]

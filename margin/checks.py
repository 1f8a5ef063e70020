"""System checks of settings that are each valid alone but wrong together."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def snapshot_refresh_fits(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A healthy account's snapshot is rewritten once every SNAPSHOT_REFRESH_TICKS ticks: if that
    outlasts SNAPSHOT_STALE_AFTER_S, its trader's page calls the row of a running revaluation
    stale between refreshes."""
    window_s = settings.SNAPSHOT_REFRESH_TICKS * settings.REVALUATION_INTERVAL_S
    if window_s < settings.SNAPSHOT_STALE_AFTER_S:
        return []
    return [
        checks.Warning(
            f"SNAPSHOT_REFRESH_TICKS × REVALUATION_INTERVAL_S = {window_s:g} s is not under "
            f"SNAPSHOT_STALE_AFTER_S = {settings.SNAPSHOT_STALE_AFTER_S:g} s: healthy accounts' "
            "pages will call their latest snapshot stale between refreshes.",
            hint="Lower SNAPSHOT_REFRESH_TICKS or raise SNAPSHOT_STALE_AFTER_S.",
            id="margin.W001",
        )
    ]

import os

from celery import Celery
from celery.signals import setup_logging, worker_init

# Registers the `embedded://` broker scheme in every process that may publish or consume.
import exchange_site.embedded_broker  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")

app = Celery("exchange_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_djangos_logging(**kwargs) -> None:
    """Celery keeps settings.LOGGING (applied by django.setup) instead of its own handlers, so the
    worker and beat log in the same format and with the same filters as the web process."""


@worker_init.connect
def _no_pool_across_fork(**kwargs) -> None:
    """The prefork worker's parent forks its children after this: any connection pool it opened
    (Celery's Django fixup touches the database at start) is closed first, so no child shares
    its sockets; each child opens its own pool."""
    from margin.db import connections_close_before_fork

    connections_close_before_fork()

import os

from celery import Celery
from celery.signals import setup_logging

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

import os

from celery import Celery

# Registers the `embedded://` broker scheme in every process that may publish or consume.
import exchange_site.embedded_broker  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")

app = Celery("exchange_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

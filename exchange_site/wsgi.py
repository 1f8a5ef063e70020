import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Import every view (the URL resolver) and compile the project's templates now, while the
    server starts, not on the first requests: five gunicorn processes each doing it (≈ 0.7 s of
    CPU) as the first users arrived left a backlog that took ≈ 20 s to drain at `make
    loadtest`'s load. No database: nothing here connects."""
    from pathlib import Path

    from django.conf import settings
    from django.template.loader import get_template
    from django.urls import reverse

    reverse("healthz")  # fills the resolver: every URLconf and view module imported
    root = Path(settings.BASE_DIR) / "templates"
    for template in root.rglob("*.html"):
        get_template(template.relative_to(root).as_posix())


_warm_up()

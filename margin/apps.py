from django.apps import AppConfig


class MarginConfig(AppConfig):
    name = "margin"
    verbose_name = "Margin, ledger and risk"

    def ready(self) -> None:
        from margin import checks  # noqa: F401  (registers the settings checks)

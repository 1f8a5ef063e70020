from django.apps import AppConfig


class MarginConfig(AppConfig):
    name = "margin"
    verbose_name = "Margin, ledger and risk"

from django.apps import AppConfig


class TwapConfig(AppConfig):
    name = "twap"
    verbose_name = "TWAP"

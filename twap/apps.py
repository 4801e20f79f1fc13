from django.apps import AppConfig


class TwapConfig(AppConfig):
    name = "twap"
    verbose_name = "TWAP"

    def ready(self) -> None:
        # The kill switch pauses every running plan (the risk gate calls this hook).
        from twap.scheduler import install_kill_hook

        install_kill_hook()

"""Celery app, configured from Django settings (CELERY_ namespace)."""

import os
from enum import StrEnum

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")


class Queue(StrEnum):
    """Queue names, defined once. Execution runs alone with prefetch 1."""

    DEFAULT = "default"
    EXECUTION = "execution"
    TWAP = "twap"


app = Celery("arbsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = Queue.DEFAULT
app.autodiscover_tasks()


@worker_process_init.connect
def _prepare_trading_process(**_: object) -> None:
    """Each worker process opens its venues before its first task (markets, connections, balances)."""
    from arbsite.memory import freeze_long_lived
    from exchanges.sessions import warm_up_in_background

    warm_up_in_background(then=freeze_long_lived)

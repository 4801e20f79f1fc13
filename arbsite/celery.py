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


def freeze_long_lived_objects() -> None:
    """Keep what a process loaded at start (Django, ccxt's markets: ~1M objects) out of the collector.

    A full collection over them pauses the process for tens of milliseconds, in the middle of an
    order if it falls there; frozen, they are never scanned again (`gc.freeze`).
    """
    import gc

    gc.collect()
    gc.freeze()


@worker_process_init.connect
def _prepare_trading_process(**_: object) -> None:
    """Each worker process opens its venues before its first task (markets, connections, balances)."""
    from exchanges.sessions import warm_up_in_background

    warm_up_in_background(then=freeze_long_lived_objects)

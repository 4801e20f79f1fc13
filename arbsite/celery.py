"""Celery app, configured from Django settings (CELERY_ namespace)."""

import os
from enum import StrEnum

from celery import Celery

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

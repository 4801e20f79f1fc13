"""Celery tasks for TWAP: thin wrappers that take ids, re-fetch, and return quietly when done.

`twap.dispatch_due_slices` runs on beat every second (`CELERY_BEAT_SCHEDULE["twap-dispatch"]`)
and hands due slices to `twap.run_slice` on the `twap` queue. A worker starting up first
reconciles the slices its previous incarnation left running; a beat starting up re-sends
slices it may have claimed without enqueueing.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import beat_init, worker_ready

from arbsite.celery import Queue

logger = logging.getLogger("twap.tasks")


@shared_task(
    name="twap.run_slice",
    acks_late=True,  # a worker that dies mid-slice leaves the message; the slice's lease covers the rest
    reject_on_worker_lost=True,
    ignore_result=True,
    bind=True,
)
def run_slice(self: Any, slice_id: int) -> str | None:
    """Run or resume one slice; a duplicate or late delivery finds it claimed or finished."""
    from twap.execution import execute_slice, set_node_name
    from twap.models import Slice

    if getattr(self.request, "hostname", None):
        set_node_name(self.request.hostname)  # the node name, also in prefork children

    if not Slice.objects.filter(pk=slice_id).exists():
        logger.info("twap slice gone", extra={"event": "twap_slice_gone", "detail": {"sliceId": slice_id}})
        return None
    done = execute_slice(slice_id)
    return done.state if done is not None else None


@shared_task(name="twap.dispatch_due_slices", ignore_result=True)
def dispatch_due_slices() -> int:
    """Beat: claim due slices (skip-locked) and lost ones, and queue each for a worker."""
    from twap import scheduler

    return len(scheduler.dispatch_due(enqueue_slice))


def enqueue_slice(slice_id: int) -> None:
    run_slice.apply_async((slice_id,), queue=Queue.TWAP.value)


@worker_ready.connect
def _reconcile_on_worker_start(sender: Any = None, **_: Any) -> None:
    """Before consuming anything: settle the slices this node held when it last died."""
    from twap import execution

    node = getattr(sender, "hostname", "") or ""
    if not node:
        return
    execution.set_node_name(node)
    try:
        execution.recover_on_start(node)
    except Exception:
        logger.exception("twap recovery on start failed", extra={"event": "twap_recovery_failed"})


@beat_init.connect
def _redispatch_on_beat_start(sender: Any = None, **_: Any) -> None:
    """A beat that died between claiming and enqueueing left slices dispatched: send them again."""
    from twap import scheduler

    try:
        for slice_id in scheduler.undelivered():
            enqueue_slice(slice_id)
    except Exception:
        logger.exception("twap redispatch on beat start failed", extra={"event": "twap_redispatch_failed"})

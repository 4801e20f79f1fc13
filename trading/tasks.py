"""Celery tasks for trading: thin wrappers that take ids, re-fetch, and return quietly when done."""

from __future__ import annotations

import logging

from celery import shared_task

from arbsite.celery import Queue

logger = logging.getLogger("trading.tasks")


@shared_task(
    name="trading.execute_arbitrage",
    acks_late=True,  # a worker that dies mid-execution leaves the message for another
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_arbitrage(execution_id: int) -> str | None:
    """Run or resume one execution; a duplicate or late delivery finds it claimed or finished."""
    from trading.execution import execute

    execution = execute(execution_id)  # claims it first: nothing else to read before the orders go out
    if execution is None:
        logger.info("execution gone", extra={"event": "execution_gone", "detail": {"executionId": execution_id}})
        return None
    return execution.state


@shared_task(name="trading.recover_stale_executions", ignore_result=True)
def recover_stale_executions() -> int:
    """Beat sweep: re-queue executions whose worker died (lease expired); they reconcile by client id."""
    from trading.execution import recover_stale

    ids = recover_stale()
    for execution_id in ids:
        enqueue_execution(execution_id)
    return len(ids)


def enqueue_execution(execution_id: int) -> None:
    """Send to the execution queue (workers there run with prefetch 1)."""
    execute_arbitrage.apply_async((execution_id,), queue=Queue.EXECUTION.value)

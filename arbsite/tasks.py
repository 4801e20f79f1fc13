"""Celery tasks for the project itself: thin wrappers over plain functions."""

from __future__ import annotations

import logging

import redis
from celery import shared_task

logger = logging.getLogger("arbsite.perf")


@shared_task(name="arbsite.check_performance", ignore_result=True, soft_time_limit=20, time_limit=25)
def check_performance() -> list[str]:
    """Beat, every 30 s: judge the recent window against the SPEC's figures; returns the breached metrics."""
    from arbsite import monitor

    try:
        result = monitor.check_performance()
    except redis.RedisError as exc:
        # Metrics live in Redis; without it there is nothing to judge (and /health already says so).
        logger.warning("performance check skipped: metrics unavailable",
                       extra={"event": "performance_check_skipped", "success": False,
                              "detail": {"error": type(exc).__name__}})
        return []
    return [r.threshold.metric for r in result.readings if r.breached]

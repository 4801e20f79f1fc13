"""The execution task's delivery guarantees and the auto-execution entry point."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from trading.execution import create_execution, recover_stale, request_auto_execution
from trading.execution_models import Execution, ExecutionState, Trigger
from trading.tasks import execute_arbitrage

pytestmark = pytest.mark.django_db


def test_it_is_acked_late_and_requeued_when_the_worker_dies() -> None:
    assert execute_arbitrage.acks_late is True
    assert execute_arbitrage.reject_on_worker_lost is True


def test_it_returns_quietly_for_a_missing_execution() -> None:
    assert execute_arbitrage(987654) is None


def test_it_queues_auto_execution_only_when_switched_on(pair: Any, monkeypatch: pytest.MonkeyPatch,
                                                        django_capture_on_commit_callbacks: Any) -> None:
    queued: list[int] = []
    monkeypatch.setattr("trading.tasks.enqueue_execution", queued.append)
    assert request_auto_execution(pair.id) is None  # auto_execute is off by default
    pair.auto_execute = True
    pair.save()
    with django_capture_on_commit_callbacks(execute=True):
        execution = request_auto_execution(pair.id)
        again = request_auto_execution(pair.id)  # one in flight already
    assert execution is not None and execution.trigger == Trigger.AUTO
    assert again is None
    assert queued == [execution.id]


def test_it_finds_executions_whose_worker_died(pair: Any) -> None:
    execution = create_execution(pair)
    Execution.objects.filter(pk=execution.pk).update(state=ExecutionState.RUNNING,
                                                     claimed_at=timezone.now() - timedelta(hours=1))
    assert recover_stale(lease_seconds=60) == [execution.id]
    assert recover_stale(lease_seconds=7200) == []

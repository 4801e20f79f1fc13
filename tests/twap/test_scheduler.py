"""Scheduling under concurrency: plan ids, skip-locked claims, lost dispatches and dead workers, restarts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from twap import execution, scheduler, tasks
from twap.models import Plan, Slice, SliceState
from twap.slicing import slice_schedule

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run `fn` in n threads started together; each thread has its own database connection."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_concurrent_creates_get_distinct_sequential_ids(make_plan: Any) -> None:
    ids = in_threads(6, lambda: make_plan().plan_id)
    assert sorted(ids) == [f"twap_{n:03d}" for n in range(1, 7)]
    assert all(Plan.objects.get(plan_id=i).slices.count() == 10 for i in ids)


def test_concurrent_dispatchers_never_claim_a_slice_twice(make_plan: Any) -> None:
    plans = [make_plan() for _ in range(8)]
    for plan in plans:
        scheduler.control(plan.plan_id, "start")
    claimed = in_threads(4, scheduler.claim_due)
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == len(set(flat)) == 8
    assert Slice.objects.filter(state=SliceState.DISPATCHED).count() == 8


def test_a_dispatcher_skips_a_slice_another_one_holds(make_plan: Any) -> None:
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with transaction.atomic():
            list(Slice.objects.select_for_update().filter(plan=plan, index=1))
            held.set()
            release.wait(timeout=10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        assert scheduler.claim_due() == []  # locked elsewhere: skipped, not waited for
    finally:
        release.set()
        holder.join(timeout=10)
    assert scheduler.claim_due() == [Slice.objects.get(plan=plan, index=1).pk]


def test_lost_dispatches_and_dead_workers_are_dispatched_again(make_plan: Any, settings: Any) -> None:
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    slice_id = Slice.objects.get(plan=plan, index=1).pk
    sent: list[int] = []
    assert scheduler.dispatch_due(sent.append) == [slice_id] and sent == [slice_id]
    assert scheduler.dispatch_due(sent.append) == []  # dispatched a moment ago: left alone
    Slice.objects.filter(pk=slice_id).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert scheduler.dispatch_due(sent.append) == [slice_id]  # the message was lost
    assert execution.claim(slice_id) is not None
    assert scheduler.dispatch_due(sent.append) == []  # a live worker holds it
    Slice.objects.filter(pk=slice_id).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert scheduler.dispatch_due(sent.append) == [slice_id]  # its worker died: the lease ran out
    assert Slice.objects.get(pk=slice_id).state == SliceState.DISPATCHED


def test_a_restarted_worker_takes_back_only_its_own_node_slices(make_plan: Any, monkeypatch: Any) -> None:
    mine, other = make_plan(), make_plan()
    for plan in (mine, other):
        scheduler.control(plan.plan_id, "start")
    ids = scheduler.claim_due()
    Slice.objects.filter(plan=mine).exclude(state=SliceState.PENDING).update(
        state=SliceState.RUNNING, claimed_by="twap1@host:111", claimed_at=timezone.now())
    Slice.objects.filter(plan=other).exclude(state=SliceState.PENDING).update(
        state=SliceState.RUNNING, claimed_by="twap2@host:222", claimed_at=timezone.now())
    ran: list[int] = []
    monkeypatch.setattr(execution, "execute_slice", lambda slice_id, **_: ran.append(slice_id))

    class Consumer:
        hostname = "twap1@host"

    tasks._reconcile_on_worker_start(sender=Consumer())
    assert ran == [Slice.objects.get(plan=mine, index=1).pk]
    assert set(ids) == {Slice.objects.get(plan=mine, index=1).pk, Slice.objects.get(plan=other, index=1).pk}


def test_a_restarted_beat_resends_what_it_claimed(make_plan: Any, monkeypatch: Any) -> None:
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    [slice_id] = scheduler.claim_due()  # claimed, then beat died before enqueueing
    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_slice", sent.append)
    tasks._redispatch_on_beat_start()
    assert sent == [slice_id]


def test_the_schedule_rows_match_the_pure_schedule(make_plan: Any) -> None:
    from decimal import Decimal

    plan = make_plan(total_qty=Decimal("0.0125"), slice_qty=Decimal("0.005"))
    rows = list(plan.slices.order_by("index").values_list("qty", flat=True))
    assert rows == slice_schedule(Decimal("0.0125"), Decimal("0.005")) == [Decimal("0.005"), Decimal("0.0075")]

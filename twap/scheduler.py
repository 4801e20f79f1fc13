"""Plan lifecycle and slice scheduling, with the database as the source of truth.

- A plan's slices are rows created with the plan; only the next one ever has a `due_at`.
- `claim_due` (the beat task, every second) locks due slices of running plans with
  `select_for_update(skip_locked=True)`, marks them dispatched and hands their ids to the
  `twap` queue after commit. Nothing waits in a Celery countdown.
- A worker takes a slice with a conditional update (`execution.claim`), so a slice
  dispatched twice runs once. Dispatched slices nobody took, and running slices whose
  worker's lease ran out, are dispatched again; the rerun reconciles by client id.
- `advance` runs after each slice, under the plan's row lock: complete the plan, pause it
  when a leg is more than one slice behind, or make the next slice due (appending a catch-up
  slice when the schedule is spent but a leg is short).
- `control` applies start/pause/resume/cancel under the same lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from arbsite.errors import Conflict, NotFound
from exchanges.order_books import now_ms
from twap import slicing
from twap.models import TERMINAL_PLAN_STATES, Plan, PlanState, Slice, SliceState

logger = logging.getLogger("twap.scheduler")

ACTIONS = ("start", "pause", "resume", "cancel")
_ALLOWED: dict[str, tuple[PlanState, ...]] = {
    "start": (PlanState.DRAFT,),
    "pause": (PlanState.RUNNING,),
    "resume": (PlanState.PAUSED,),
    "cancel": (PlanState.DRAFT, PlanState.RUNNING, PlanState.PAUSED),
}


def lease_seconds() -> float:
    """How long a worker's claim on a running slice holds; above Celery's hard time limit."""
    return float(getattr(settings, "TWAP_SLICE_LEASE_SECONDS", 150.0))


def dispatch_timeout_seconds() -> float:
    """A dispatched slice no worker took within this is dispatched again (the message was lost)."""
    return float(getattr(settings, "TWAP_DISPATCH_TIMEOUT_SECONDS", 30.0))


# --------------------------------------------------------------------------- events


def publish_event(event: str, data: dict[str, Any]) -> None:
    from trading import execution as arbitrage  # its `_publish`: lazy, never raises into the engine

    arbitrage._publish(event, data)


def progress_payload(plan: Plan) -> dict[str, Any]:
    """The `twap_progress` event (contract fields plus per-leg executed quantity and average price)."""
    p = plan.progress()
    return {
        "planId": plan.plan_id,
        "executed": float(p.executed),
        "remaining": float(p.remaining),
        "slicesDone": p.slices_done,
        "slicesTotal": p.slices_total,
        "state": plan.state,
        "leg1Executed": float(p.leg1.executed),
        "leg2Executed": float(p.leg2.executed),
        "leg1AvgPrice": None if p.leg1.avg_price is None else float(p.leg1.avg_price),
        "leg2AvgPrice": None if p.leg2.avg_price is None else float(p.leg2.avg_price),
        "lastExecutionTs": _ms(plan.last_execution_at),
        "ts": now_ms(),
    }


def alert_payload(plan: Plan, severity: str, code: str, message: str) -> dict[str, Any]:
    return {"severity": severity, "code": code, "message": f"{plan.plan_id}: {message}", "planId": plan.plan_id,
            "ts": now_ms()}


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _after_commit(fn: Callable[[], None]) -> None:
    transaction.on_commit(fn)


def publish_progress_later(plan: Plan) -> None:
    """The plan's progress as this transaction sees it, published once it commits (never a state that rolled back)."""
    payload = progress_payload(plan)
    _after_commit(lambda: publish_event("twap_progress", payload))


def alert_later(plan: Plan, severity: str, code: str, message: str) -> None:
    payload = alert_payload(plan, severity, code, message)
    logger.warning("twap alert", extra={"event": "twap_alert", "error_code": code,
                                        "detail": {"planId": plan.plan_id, "message": message}})
    _after_commit(lambda: publish_event("engine_alert", payload))


# --------------------------------------------------------------------------- plans


def create_plan(fields: dict[str, Any]) -> Plan:
    """A draft plan with its whole slice schedule stored (no slice due until it starts)."""
    schedule = slicing.slice_schedule(fields["total_qty"], fields["slice_qty"])
    with transaction.atomic():
        plan = Plan.create_numbered(**fields)
        Slice.objects.bulk_create(Slice(plan=plan, index=i, qty=q) for i, q in enumerate(schedule, start=1))
    return plan


def get_plan(plan_id: str) -> Plan:
    plan = Plan.objects.filter(plan_id=plan_id).first()
    if plan is None:
        raise NotFound(f"TWAP plan {plan_id} not found")
    return plan


def _in_flight(plan: Plan) -> bool:
    return plan.slices.filter(state__in=[SliceState.DISPATCHED, SliceState.RUNNING]).exists()


def delete_plan(plan_id: str) -> None:
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(plan_id=plan_id).first()
        if plan is None:
            raise NotFound(f"TWAP plan {plan_id} not found")
        if plan.state == PlanState.RUNNING:
            raise Conflict(f"{plan_id} is running; pause or cancel it before deleting")
        if _in_flight(plan):
            raise Conflict(f"{plan_id} has a slice in flight; delete it once that slice has finished")
        plan.delete()


def control(plan_id: str, action: str) -> Plan:
    """start | pause | resume | cancel; CONFLICT (with the current state) for a transition that is not allowed."""
    if action not in ACTIONS:
        raise Conflict(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    now = timezone.now()
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(plan_id=plan_id).first()
        if plan is None:
            raise NotFound(f"TWAP plan {plan_id} not found")
        if plan.state not in _ALLOWED[action]:
            hint = {"start": " (a paused plan is resumed, not started)", "resume": " (only a paused plan resumes)"}
            raise Conflict(f"cannot {action} {plan_id}: it is {plan.state}{hint.get(action, '') if plan.state not in TERMINAL_PLAN_STATES else ''}")
        if action == "start":
            plan.state, plan.started_at, plan.state_reason = PlanState.RUNNING, now, ""
            plan.save(update_fields=["state", "started_at", "state_reason", "updated_at"])
            _make_next_due(plan, now)
        elif action == "pause":
            plan.state, plan.state_reason = PlanState.PAUSED, "paused by the operator"
            plan.save(update_fields=["state", "state_reason", "updated_at"])
        elif action == "resume":
            plan.state, plan.state_reason = PlanState.RUNNING, ""
            plan.save(update_fields=["state", "state_reason", "updated_at"])
            # A resumed plan starts waiting afresh (spread guard, deferrals) and sends now.
            plan.slices.filter(state=SliceState.PENDING).update(deferrals=0, waiting_since=None, due_at=None)
            if not _in_flight(plan):
                _make_next_due(plan, now)
        else:
            plan.state, plan.state_reason, plan.finished_at = PlanState.CANCELLED, "cancelled by the operator", now
            plan.save(update_fields=["state", "state_reason", "finished_at", "updated_at"])
            plan.slices.filter(state=SliceState.PENDING).update(state=SliceState.CANCELLED, due_at=None)
            legs = plan.executed_by_leg()
            if legs[1].executed != legs[2].executed:
                alert_later(plan, "warning", "TWAP_LEGS_UNEVEN",
                            f"cancelled with legs uneven: leg 1 {legs[1].executed}, leg 2 {legs[2].executed}")
        logger.info("twap control", extra={"event": "twap_control", "detail": {"planId": plan_id, "action": action}})
        publish_progress_later(plan)
    return plan


def _make_next_due(plan: Plan, due: datetime) -> Slice | None:
    """Give the first pending slice a due time; append a catch-up slice when the schedule is spent."""
    nxt = plan.slices.filter(state=SliceState.PENDING).order_by("index").first()
    if nxt is None:
        legs = plan.executed_by_leg()
        if legs[1].executed >= plan.total_qty and legs[2].executed >= plan.total_qty:
            _complete(plan)
            return None
        last = plan.slices.aggregate(m=Max("index"))["m"] or 0
        nxt = Slice.objects.create(plan=plan, index=last + 1, qty=Decimal(0), catch_up=True)
    if nxt.due_at is None or nxt.due_at > due:
        nxt.due_at = due
        nxt.save(update_fields=["due_at", "updated_at"])
    return nxt


def _complete(plan: Plan) -> None:
    plan.state, plan.finished_at, plan.state_reason = PlanState.COMPLETED, timezone.now(), ""
    plan.save(update_fields=["state", "finished_at", "state_reason", "updated_at"])


def pause_with_alert(plan: Plan, reason: str, code: str = "TWAP_PAUSED") -> None:
    """Pause a running plan (caller holds its row lock) and raise an engine alert."""
    if plan.state != PlanState.RUNNING:
        return
    plan.state, plan.state_reason = PlanState.PAUSED, reason
    plan.save(update_fields=["state", "state_reason", "updated_at"])
    alert_later(plan, "error", code, f"paused: {reason}")


def advance(plan: Plan, done: Slice) -> None:
    """After slice `done` (caller holds the plan's row lock): complete, pause, or schedule the next slice."""
    schedule = slicing.slice_schedule(plan.total_qty, plan.slice_qty)
    legs = plan.executed_by_leg()
    e1, e2 = legs[1].executed, legs[2].executed
    if e1 >= plan.total_qty and e2 >= plan.total_qty:
        _complete(plan)
        plan.slices.filter(state=SliceState.PENDING).update(state=SliceState.CANCELLED, due_at=None)
        return
    if plan.state != PlanState.RUNNING:
        return  # paused or cancelled while the slice ran: nothing more is scheduled
    target = slicing.cumulative_target(schedule, done.index)
    verdict = slicing.judge_gap(target, e1, e2, max(schedule))
    if verdict.pause:
        pause_with_alert(plan, verdict.reason, "TWAP_LEGS_APART")
        return
    if done.catch_up and (e1 < plan.total_qty or e2 < plan.total_qty):
        pause_with_alert(plan, f"catch-up slice {done.index} left the legs short: leg 1 {e1}, leg 2 {e2} "
                               f"of {plan.total_qty}", "TWAP_LEGS_APART")
        return
    if verdict.lag1 > 0 or verdict.lag2 > 0:
        alert_later(plan, "warning", "TWAP_CATCH_UP",
                    f"slice {done.index} left leg 1 {verdict.lag1} and leg 2 {verdict.lag2} behind; "
                    "the next slice catches up")
    previous = done.due_at or timezone.now()
    due_ms = slicing.next_due_ms(_ms(previous) or 0, plan.interval_ms, now_ms())
    _make_next_due(plan, datetime.fromtimestamp(due_ms / 1000, tz=timezone.get_current_timezone()))


# --------------------------------------------------------------------------- dispatch


def claim_due(limit: int = 50) -> list[int]:
    """Lock and mark due slices of running plans as dispatched; rows other dispatchers hold are skipped."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Slice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=SliceState.PENDING, due_at__lte=now, plan__state=PlanState.RUNNING)
            .order_by("due_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Slice.objects.filter(id__in=ids).update(state=SliceState.DISPATCHED, dispatched_at=now)
    return ids


def stale_slices() -> list[int]:
    """Dispatched slices nobody took in time, and running slices whose worker's lease expired."""
    now = timezone.now()
    lost = Q(state=SliceState.DISPATCHED, dispatched_at__lt=now - timedelta(seconds=dispatch_timeout_seconds()))
    dead = Q(state=SliceState.RUNNING, claimed_at__lt=now - timedelta(seconds=lease_seconds()))
    with transaction.atomic():
        ids = list(
            Slice.objects.select_for_update(skip_locked=True).filter(lost | dead).values_list("id", flat=True)[:50]
        )
        # Back to dispatched with a fresh stamp: the next beat tick leaves them alone while a worker
        # is on its way, and the worker's claim takes them (its rerun reconciles by client id).
        Slice.objects.filter(id__in=ids).update(state=SliceState.DISPATCHED, dispatched_at=now)
    return ids


def dispatch_due(enqueue: Callable[[int], None]) -> list[int]:
    """Claim what is due plus what was lost, and enqueue each (the worker's claim makes duplicates harmless)."""
    ids = claim_due() + stale_slices()
    for slice_id in ids:
        enqueue(slice_id)
    if ids:
        logger.info("twap slices dispatched", extra={"event": "twap_dispatch", "detail": {"slices": ids}})
    return ids


def undelivered() -> list[int]:
    """Every dispatched slice: a restarted beat re-sends them at once (it may have died before enqueueing)."""
    return list(Slice.objects.filter(state=SliceState.DISPATCHED).values_list("id", flat=True))


def pause_all_running(reason: str) -> None:
    """The kill switch was engaged: every running plan pauses at once, with an alert saying why."""
    paused = []
    for plan_pk in Plan.objects.filter(state=PlanState.RUNNING).values_list("pk", flat=True):
        with transaction.atomic():
            plan = Plan.objects.select_for_update().get(pk=plan_pk)
            if plan.state != PlanState.RUNNING:
                continue
            pause_with_alert(plan, f"kill switch engaged: {reason}", "KILL_SWITCH")
            publish_progress_later(plan)
            paused.append(plan.plan_id)
    if paused:
        logger.warning("twap plans paused by the kill switch",
                       extra={"event": "twap_kill_switch", "detail": {"plans": paused}})


def install_kill_hook() -> None:
    """Ask the risk engine to pause plans when the kill switch is engaged (idempotent)."""
    from trading.risk import on_kill

    on_kill(pause_all_running)


install_kill_hook()

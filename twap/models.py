"""TWAP plans, their slices (due rows in the database) and each slice's orders.

The database is the source of truth for scheduling: a slice is a row with a `due_at`; the
beat task claims due rows with `select_for_update(skip_locked=True)` and a worker runs them.
Each `SliceOrder` (with its deterministic client order id) is saved before the order goes
out, so a redelivered or restarted slice finds its orders at the venue instead of sending
again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Max, Q, Sum

from exchanges.order_records import VenueOrderRecord

PLAN_ID_PREFIX = "twap_"
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LegProgress:
    executed: Decimal
    avg_price: Decimal | None
    fees: Decimal


@dataclass(frozen=True, slots=True)
class Progress:
    executed: Decimal
    remaining: Decimal
    slices_done: int
    slices_total: int
    leg1: LegProgress
    leg2: LegProgress


def new_uid() -> str:
    return uuid.uuid4().hex[:12]


class PlanState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


TERMINAL_PLAN_STATES = (PlanState.COMPLETED, PlanState.CANCELLED, PlanState.FAILED)


class Plan(models.Model):
    seq = models.PositiveIntegerField(unique=True, editable=False)
    plan_id = models.CharField(max_length=32, unique=True, editable=False)
    uid = models.CharField(
        max_length=12, unique=True, default=new_uid, editable=False,
        help_text="Random per plan; part of every client order id (plan ids restart with a new database).",
    )
    name = models.CharField(max_length=100)
    total_qty = models.DecimalField(max_digits=30, decimal_places=12)
    slice_qty = models.DecimalField(max_digits=30, decimal_places=12)
    interval_ms = models.PositiveIntegerField()
    leg1_exchange = models.CharField(max_length=16)
    leg1_symbol = models.CharField(max_length=32)
    leg1_market_type = models.CharField(max_length=8, default="spot")
    leg1_side = models.CharField(max_length=4)
    leg1_order_type = models.CharField(max_length=8, default="market")
    leg2_exchange = models.CharField(max_length=16)
    leg2_symbol = models.CharField(max_length=32)
    leg2_market_type = models.CharField(max_length=8, default="spot")
    leg2_side = models.CharField(max_length=4)
    leg2_order_type = models.CharField(max_length=8, default="market")
    max_spread_percent = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True,
        help_text="Optional: a slice whose executable adverse spread (buy vs sell, %) is worse waits.",
    )
    spread_wait_ms = models.PositiveIntegerField(
        default=60_000, help_text="How long a slice may wait for the spread before the plan pauses."
    )
    state = models.CharField(max_length=10, choices=PlanState.choices, default=PlanState.DRAFT, db_index=True)
    state_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_execution_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.name} ({self.state})"

    @classmethod
    def create_numbered(cls, **fields: object) -> Plan:
        """Insert with the next `twap_NNN`; two concurrent creators collide on `seq` and the loser retries."""
        for _ in range(20):
            seq = (cls.objects.aggregate(m=Max("seq"))["m"] or 0) + 1
            try:
                with transaction.atomic():
                    return cls.objects.create(seq=seq, plan_id=f"{PLAN_ID_PREFIX}{seq:03d}", **fields)
            except IntegrityError:
                continue
        raise IntegrityError("could not allocate a plan id")

    def executed_by_leg(self) -> dict[int, LegProgress]:
        """Filled quantity, average price and fees per leg, over every slice's orders."""
        rows = (
            SliceOrder.objects.filter(slice__plan=self, filled_qty__gt=0)
            .values("leg")
            .annotate(qty=Sum("filled_qty"), notional=Sum(F("filled_qty") * F("avg_price")), fees=Sum("fee"))
        )
        out = {1: LegProgress(ZERO, None, ZERO), 2: LegProgress(ZERO, None, ZERO)}
        for row in rows:
            qty = row["qty"] or ZERO
            out[row["leg"]] = LegProgress(qty, (row["notional"] / qty) if qty else None, row["fees"] or ZERO)
        return out

    def progress(self) -> Progress:
        legs = self.executed_by_leg()
        counts = self.slices.aggregate(
            done=Count("id", filter=Q(state=SliceState.DONE)),
            total=Count("id", filter=~Q(state=SliceState.CANCELLED) | Q(catch_up=False)),
        )
        # The plan has executed what both legs have: a leg ahead of the other is not yet a done pair.
        executed = min(legs[1].executed, legs[2].executed)
        return Progress(
            executed=executed,
            remaining=max(self.total_qty - executed, ZERO),
            slices_done=counts["done"],
            slices_total=counts["total"],
            leg1=legs[1],
            leg2=legs[2],
        )

    def leg(self, n: int) -> dict[str, str]:
        p = f"leg{n}_"
        return {
            "exchange": getattr(self, p + "exchange"),
            "symbol": getattr(self, p + "symbol"),
            "marketType": getattr(self, p + "market_type"),
            "side": getattr(self, p + "side"),
            "type": getattr(self, p + "order_type"),
        }


class SliceState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its due time (no due time: not yet scheduled)
    DISPATCHED = "dispatched", "Dispatched"  # claimed by beat, handed to a worker
    RUNNING = "running", "Running"  # a worker holds it (orders may be in flight)
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class Slice(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="slices")
    index = models.PositiveIntegerField(help_text="1-based; catch-up slices come after the schedule.")
    qty = models.DecimalField(max_digits=30, decimal_places=12, help_text="Scheduled quantity (per leg).")
    catch_up = models.BooleanField(default=False, help_text="Added after the schedule to bring a lagging leg level.")
    state = models.CharField(max_length=10, choices=SliceState.choices, default=SliceState.PENDING, db_index=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True, help_text="worker node:pid holding it")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker took it (reruns reconcile).")
    deferrals = models.PositiveIntegerField(default=0, help_text="Times it was put back before sending.")
    waiting_since = models.DateTimeField(null=True, blank=True, help_text="First deferral (spread guard, risk).")
    note = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan", "index"]
        constraints = [models.UniqueConstraint(fields=["plan", "index"], name="twap_slice_unique_index")]

    def __str__(self) -> str:
        return f"{self.plan.plan_id} slice {self.index} ({self.state})"


class OrderState(models.TextChoices):
    SENDING = "sending", "Sending (outcome unknown until reconciled)"
    OPEN = "open", "Open"
    FILLED = "filled", "Filled"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    CANCELED = "canceled", "Cancelled, nothing filled"
    REJECTED = "rejected", "Rejected"
    NOT_FOUND = "not_found", "Not found at the venue (never arrived)"


class SliceOrder(VenueOrderRecord):
    slice = models.ForeignKey(Slice, on_delete=models.CASCADE, related_name="orders")
    client_order_id = models.CharField(max_length=36, unique=True)
    expected_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    state = models.CharField(max_length=18, choices=OrderState.choices, default=OrderState.SENDING)

    class Meta:
        ordering = ["slice", "leg"]
        constraints = [models.UniqueConstraint(fields=["slice", "leg"], name="twap_order_one_per_leg")]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.qty} {self.exchange} {self.symbol} ({self.state})"


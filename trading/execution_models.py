"""Executions of a pair, their orders and fills, and the leg-risk steps taken on them.

An `Execution` is created before anything is sent and claimed atomically by whoever runs
it. Each `ExecutionOrder` row (with its deterministic, unique client order id) is saved
before the order goes out, so a retried or redelivered run finds it at the venue instead
of sending another. `LegRiskStep` is the stored trail of the leg-risk state machine.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from exchanges.order_records import VenueOrderRecord


def new_uid() -> str:
    return uuid.uuid4().hex[:16]


class ExecutionState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    LEG_RISK = "leg_risk", "Leg risk: resolving"
    COMPLETED = "completed", "Completed"
    HEDGED = "hedged", "Completed after leg risk"
    FLATTENED = "flattened", "Unwound after leg risk"
    REJECTED = "rejected", "Rejected before sending"
    FAILED = "failed", "Failed: nothing filled"
    UNRESOLVED = "unresolved", "Unresolved exposure: needs an operator"


ACTIVE_STATES = (ExecutionState.PENDING, ExecutionState.RUNNING, ExecutionState.LEG_RISK)
TERMINAL_STATES = tuple(s for s in ExecutionState if s not in ACTIVE_STATES)


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    AUTO = "auto", "Automatic"


class Execution(models.Model):
    uid = models.CharField(
        max_length=16,
        unique=True,
        default=new_uid,
        editable=False,
        help_text="Random per execution; part of every client order id.",
    )
    pair = models.ForeignKey(
        "trading.Pair", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    pair_key = models.CharField(max_length=64, db_index=True, help_text="The pair id, kept when the pair is deleted.")
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.MANUAL)
    state = models.CharField(max_length=12, choices=ExecutionState.choices, default=ExecutionState.PENDING)
    paper = models.BooleanField(default=False)
    direction = models.CharField(max_length=24, blank=True)
    qty = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    leg1_exchange = models.CharField(max_length=16)
    leg1_symbol = models.CharField(max_length=32)
    leg1_type = models.CharField(max_length=8)
    leg2_exchange = models.CharField(max_length=16)
    leg2_symbol = models.CharField(max_length=32)
    leg2_type = models.CharField(max_length=8)
    expected_buy_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    expected_sell_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    expected_net_edge = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    expected_net_edge_percent = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    spread = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    spread_percent = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    fees = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    pnl = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "trading"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pair_key", "-created_at"], name="execution_pair_recent")]
        constraints = [
            # One execution in flight per pair: a second click or a racing auto-trigger is refused.
            models.UniqueConstraint(
                fields=["pair_key"],
                condition=Q(state__in=["pending", "running", "leg_risk"]),
                name="execution_one_active_per_pair",
            ),
        ]

    def __str__(self) -> str:
        return f"execution {self.id} {self.pair_key} {self.state}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class OrderPurpose(models.TextChoices):
    ENTRY = "entry", "Entry leg"
    COMPLETE = "complete", "Complete the missing leg"
    FLATTEN = "flatten", "Flatten filled exposure"


class OrderState(models.TextChoices):
    NEW = "new", "Saved, not sent"
    SENDING = "sending", "Sent, no answer yet"
    OPEN = "open", "Open"
    FILLED = "filled", "Filled"
    PARTIALLY_FILLED = "partially_filled", "Partially filled (rest cancelled)"
    CANCELED = "canceled", "Cancelled, nothing filled"
    REJECTED = "rejected", "Rejected"
    NOT_FOUND = "not_found", "Never reached the venue"


UNSETTLED_ORDER_STATES = (OrderState.NEW, OrderState.SENDING, OrderState.OPEN)


class ExecutionOrder(VenueOrderRecord):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="orders")
    purpose = models.CharField(max_length=8, choices=OrderPurpose.choices)
    attempt = models.PositiveSmallIntegerField(default=0)
    client_order_id = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=16, choices=OrderState.choices, default=OrderState.NEW)

    class Meta:
        app_label = "trading"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "leg", "purpose", "attempt"], name="execution_order_role"),
        ]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.qty} {self.exchange}:{self.symbol} {self.state}"

    @property
    def signed_filled(self) -> Decimal:
        return self.filled_qty if self.side == "buy" else -self.filled_qty


class Fill(models.Model):
    order = models.ForeignKey(ExecutionOrder, on_delete=models.CASCADE, related_name="fills")
    price = models.DecimalField(max_digits=30, decimal_places=12)
    qty = models.DecimalField(max_digits=30, decimal_places=12)
    fee = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "trading"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"fill {self.qty} @ {self.price}"


class LegRiskAction(models.TextChoices):
    DETECTED = "detected", "One-sided exposure detected"
    COMPLETE_ATTEMPT = "complete_attempt", "Completion order"
    COMPLETED = "completed", "Missing leg completed"
    FLATTEN_ATTEMPT = "flatten_attempt", "Flatten order"
    FLATTENED = "flattened", "Exposure flattened"
    UNRESOLVED = "unresolved", "Exposure left: operator needed"
    RECONCILED = "reconciled", "Reconciled after a restart"


class LegRiskStep(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="leg_risk_steps")
    action = models.CharField(max_length=20, choices=LegRiskAction.choices)
    order = models.ForeignKey(ExecutionOrder, null=True, blank=True, on_delete=models.SET_NULL)
    imbalance = models.DecimalField(
        max_digits=30,
        decimal_places=12,
        default=Decimal(0),
        help_text="Net base quantity across both legs after this step (0 = hedged).",
    )
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "trading"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} (imbalance {self.imbalance})"

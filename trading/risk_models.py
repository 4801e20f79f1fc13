"""Risk records: limits (global and per pair), trading states, the kill switch, breakers,
daily usage, reservations of exposure, alerts and the audit of limit changes.

Everything the gate decides from lives here, so a restart of any process resumes with the
same states (a kill switch stays engaged until an operator clears it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = [
    "LIMIT_FIELDS",
    "Alert",
    "BreakerState",
    "BreakerStatus",
    "DailyUsage",
    "KillSwitch",
    "LimitChange",
    "PnlRecord",
    "RiskLimits",
    "RiskPosition",
    "RiskReservation",
    "State",
    "TradingState",
]


def _dec(name: str, default: str) -> Decimal:
    return Decimal(str(getattr(settings, name, default)))


def limit_defaults() -> dict[str, Any]:
    """The global limits a fresh desk starts with: sane for paper trading BTC/ETH."""
    return {
        "max_slippage_percent": _dec("RISK_MAX_SLIPPAGE_PERCENT", "0.5"),
        "max_price_deviation_percent": _dec("RISK_MAX_PRICE_DEVIATION_PERCENT", "2"),
        "abnormal_move_percent": _dec("RISK_ABNORMAL_MOVE_PERCENT", "3"),
        "abnormal_move_window_seconds": int(getattr(settings, "RISK_ABNORMAL_MOVE_WINDOW_SECONDS", 10)),
        "max_book_age_seconds": _dec("RISK_MAX_BOOK_AGE_SECONDS", str(getattr(settings, "MARKETDATA_STALE_SECONDS", 10))),
        "max_order_notional": _dec("RISK_MAX_ORDER_NOTIONAL", "5000"),
        "max_position_notional_per_venue": _dec("RISK_MAX_POSITION_NOTIONAL_PER_VENUE", "20000"),
        "max_net_position_notional": _dec("RISK_MAX_NET_POSITION_NOTIONAL", "5000"),
        "max_daily_notional": _dec("RISK_MAX_DAILY_NOTIONAL", "100000"),
        "max_daily_loss": _dec("RISK_MAX_DAILY_LOSS", "500"),
        "pnl_window_minutes": int(getattr(settings, "RISK_PNL_WINDOW_MINUTES", 60)),
        "pnl_window_floor": _dec("RISK_PNL_WINDOW_FLOOR", "-200"),
        "breaker_consecutive_failures": int(getattr(settings, "RISK_BREAKER_CONSECUTIVE_FAILURES", 5)),
        "breaker_error_rate_percent": _dec("RISK_BREAKER_ERROR_RATE_PERCENT", "50"),
        "breaker_window_seconds": int(getattr(settings, "RISK_BREAKER_WINDOW_SECONDS", 300)),
        "breaker_min_samples": int(getattr(settings, "RISK_BREAKER_MIN_SAMPLES", 10)),
        "breaker_cooldown_seconds": int(getattr(settings, "RISK_BREAKER_COOLDOWN_SECONDS", 300)),
    }


# The limit fields, in API order (camelCase in JSON); per-pair rows leave a field null to inherit.
LIMIT_FIELDS: tuple[str, ...] = tuple(limit_defaults())


def _money(**kw: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True, **kw)


def _percent(**kw: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True, **kw)


class RiskLimits(models.Model):
    """One global row (pair empty) and at most one row per pair; a null field inherits the global value."""

    pair = models.OneToOneField(
        "trading.Pair", null=True, blank=True, on_delete=models.CASCADE, related_name="risk_limits"
    )
    max_slippage_percent = _percent(help_text="Executable VWAP vs expected (top-of-book) price, in %.")
    max_price_deviation_percent = _percent(help_text="A venue's mid vs the cross-venue median, in %.")
    abnormal_move_percent = _percent(help_text="A move larger than this within the window pauses trading.")
    abnormal_move_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_book_age_seconds = _percent(help_text="Books older than this are stale.")
    max_order_notional = _money(help_text="Per-order notional cap, quote (USDT).")
    max_position_notional_per_venue = _money(help_text="Net position per asset on one venue, quote notional.")
    max_net_position_notional = _money(help_text="Net position per asset across venues, quote notional.")
    max_daily_notional = _money(help_text="Notional sent per UTC day (reset at midnight).")
    max_daily_loss = _money(help_text="Realised loss per UTC day that halts opening orders (positive number).")
    pnl_window_minutes = models.PositiveIntegerField(null=True, blank=True)
    pnl_window_floor = _money(help_text="Realised PnL over the moving window below this pauses the pair.")
    breaker_consecutive_failures = models.PositiveIntegerField(null=True, blank=True)
    breaker_error_rate_percent = _percent()
    breaker_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    breaker_min_samples = models.PositiveIntegerField(null=True, blank=True)
    breaker_cooldown_seconds = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "risk limits"
        verbose_name_plural = "risk limits"
        constraints = [
            models.UniqueConstraint(
                fields=["pair"], condition=models.Q(pair__isnull=True), name="risk_limits_one_global"
            ),
        ]

    def __str__(self) -> str:
        return f"risk limits for {self.pair_id}" if self.pair_id else "global risk limits"

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


class State(models.TextChoices):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that reduce exposure (leg-risk completion, flatten)
    HALTED = "halted"


class TradingState(models.Model):
    """The state of one scope: `global`, `pair:<id>` or `exchange:<name>`; absent means active."""

    scope = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    reason = models.TextField(blank=True)
    automatic = models.BooleanField(default=False, help_text="Set by the engine (pause), not an operator.")
    until = models.DateTimeField(null=True, blank=True, help_text="An automatic pause that lifts itself then.")
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope"]

    def __str__(self) -> str:
        return f"{self.scope}: {self.state}"


class KillSwitch(models.Model):
    """A single row (pk=1): engaged halts everything, across restarts, until an operator clears it."""

    engaged = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    engaged_by = models.CharField(max_length=150, blank=True)
    engaged_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.CharField(max_length=150, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "kill switch"
        verbose_name_plural = "kill switch"

    def __str__(self) -> str:
        return "kill switch ENGAGED" if self.engaged else "kill switch clear"

    @classmethod
    def load(cls) -> KillSwitch:
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class BreakerStatus(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerState(models.Model):
    """A circuit breaker for `pair:<id>` or `exchange:<name>`: failures counted in a tumbling window."""

    scope = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=BreakerStatus.choices, default=BreakerStatus.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    window_total = models.PositiveIntegerField(default=0)
    window_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope"]

    def __str__(self) -> str:
        return f"{self.scope}: {self.status}"


class DailyUsage(models.Model):
    """Notional sent and PnL realised per UTC day, for `global` and each `pair:<id>`."""

    day = models.DateField()
    scope = models.CharField(max_length=100)
    notional = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    realised_pnl = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    orders = models.PositiveIntegerField(default=0)
    rejections = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "scope"]
        constraints = [models.UniqueConstraint(fields=["day", "scope"], name="daily_usage_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.scope}"


class RiskPosition(models.Model):
    """Net base quantity the desk's orders hold per venue and asset, and what unsettled orders may add.

    `qty` is settled (filled) quantity; `pending_long` / `pending_short` are the buys and sells
    that passed the gate and have not reported yet. The position may end anywhere between
    `qty - pending_short` and `qty + pending_long`: the gate keeps that whole range in limits.
    """

    exchange = models.CharField(max_length=16)
    asset = models.CharField(max_length=16)
    qty = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    pending_long = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    pending_short = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["asset", "exchange"]
        constraints = [models.UniqueConstraint(fields=["exchange", "asset"], name="risk_position_unique")]

    def __str__(self) -> str:
        return f"{self.exchange} {self.asset} {self.qty}"


class RiskReservation(models.Model):
    """What one order reserved at the gate, by client order id: a rerun never reserves twice."""

    client_order_id = models.CharField(max_length=64, unique=True)
    exchange = models.CharField(max_length=16)
    asset = models.CharField(max_length=16)
    signed_qty = models.DecimalField(max_digits=30, decimal_places=12)
    notional = models.DecimalField(max_digits=30, decimal_places=12)
    pair_id = models.CharField(max_length=100, blank=True)
    plan_id = models.CharField(max_length=100, blank=True)
    purpose = models.CharField(max_length=10)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    filled_qty = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.signed_qty} {self.asset}@{self.exchange}"


class PnlRecord(models.Model):
    """One realised PnL (an execution, a TWAP slice): the moving-window guard sums these."""

    pair_id = models.CharField(max_length=100, blank=True, db_index=True)
    plan_id = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=30, decimal_places=12)
    ref = models.CharField(max_length=100, blank=True, help_text="What realised it (execution id, slice).")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.pair_id or self.plan_id}: {self.amount}"


class Alert(models.Model):
    """Every risk rejection, auto-pause, breaker and kill: stored, published as `engine_alert`."""

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"
        CRITICAL = "critical"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    code = models.CharField(max_length=40)
    message = models.TextField()
    pair_id = models.CharField(max_length=100, blank=True)
    exchange = models.CharField(max_length=16, blank=True)
    risk_check = models.CharField(max_length=40, blank=True, help_text="The risk check that raised it, if any.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message[:60]}"


class LimitChange(models.Model):
    """The audit trail: who changed which limit, state or switch, from what to what, when."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, help_text="api, admin or engine")
    scope = models.CharField(max_length=100, help_text="global, pair:<id>, exchange:<name>, kill_switch")
    field = models.CharField(max_length=64)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username or self.source}: {self.scope}.{self.field}"

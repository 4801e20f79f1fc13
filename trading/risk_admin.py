"""Risk in the Django admin: limits, states and the kill switch are editable (and audited);
breakers can be reset; alerts, usage, positions and the audit trail are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from trading.risk import breaker, gate
from trading.risk_models import (
    LIMIT_FIELDS,
    Alert,
    BreakerState,
    DailyUsage,
    KillSwitch,
    LimitChange,
    PnlRecord,
    RiskLimits,
    RiskPosition,
    TradingState,
)


def _user(request: HttpRequest) -> str:
    return str(getattr(request.user, "username", "") or "")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RiskLimits)
class RiskLimitsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "max_order_notional", "max_daily_notional", "max_daily_loss", "max_slippage_percent",
                    "updated_by", "updated_at")
    readonly_fields = ("updated_at", "updated_by")
    fields = ("pair", *LIMIT_FIELDS, "updated_at", "updated_by")

    def save_model(self, request: HttpRequest, obj: RiskLimits, form: Any, change: bool) -> None:
        old = RiskLimits.objects.filter(pk=obj.pk).first() if obj.pk else None
        obj.updated_by = _user(request)
        super().save_model(request, obj, form, change)
        scope = f"pair:{obj.pair_id}" if obj.pair_id else "global"
        for name in LIMIT_FIELDS:
            before = getattr(old, name) if old is not None else None
            after = getattr(obj, name)
            if before != after:
                LimitChange.objects.create(username=_user(request), source="admin", scope=scope, field=name,
                                           old_value="" if before is None else str(before),
                                           new_value="" if after is None else str(after))


@admin.register(TradingState)
class TradingStateAdmin(admin.ModelAdmin):
    list_display = ("scope", "state", "reason", "automatic", "until", "updated_by", "updated_at")
    list_filter = ("state", "automatic")
    fields = ("scope", "state", "reason", "until")

    def save_model(self, request: HttpRequest, obj: TradingState, form: Any, change: bool) -> None:
        gate.set_state(obj.scope, obj.state, obj.reason, user=_user(request), source="admin", until=obj.until)
        if obj.state == "active" and obj.scope != gate.GLOBAL:
            breaker.reset(obj.scope)
        obj.pk = TradingState.objects.get(scope=obj.scope).pk


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    """Engaging here halts and cancels exactly as the API does; clearing is the deliberate resume."""

    list_display = ("__str__", "reason", "engaged_by", "engaged_at", "cleared_by", "cleared_at")
    fields = ("engaged", "reason", "engaged_by", "engaged_at", "cleared_by", "cleared_at")
    readonly_fields = ("engaged_by", "engaged_at", "cleared_by", "cleared_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not KillSwitch.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: KillSwitch, form: Any, change: bool) -> None:
        if obj.engaged:
            gate.engage_kill_switch(obj.reason or "engaged from the admin", user=_user(request), source="admin")
        else:
            gate.clear_kill_switch(user=_user(request), source="admin", reason=obj.reason)
        obj.pk = 1


@admin.register(BreakerState)
class BreakerStateAdmin(ReadOnlyAdmin):
    list_display = ("scope", "status", "consecutive_failures", "window_failures", "window_total", "opened_at",
                    "reason")
    list_filter = ("status",)
    actions = ["reset_breakers"]

    @admin.action(description="Close (reset) the selected breakers")
    def reset_breakers(self, request: HttpRequest, queryset: QuerySet[BreakerState]) -> None:
        for row in queryset:
            breaker.reset(row.scope)
            LimitChange.objects.create(username=_user(request), source="admin", scope=row.scope, field="breaker",
                                       old_value=row.status, new_value="closed")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("at", "severity", "code", "risk_check", "pair_id", "exchange", "message")
    list_filter = ("severity", "code", "risk_check")
    search_fields = ("message", "pair_id")


@admin.register(LimitChange)
class LimitChangeAdmin(ReadOnlyAdmin):
    list_display = ("at", "username", "source", "scope", "field", "old_value", "new_value")
    list_filter = ("source", "scope")


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    list_display = ("day", "scope", "notional", "realised_pnl", "orders", "rejections")


@admin.register(RiskPosition)
class RiskPositionAdmin(ReadOnlyAdmin):
    list_display = ("exchange", "asset", "qty", "updated_at")


@admin.register(PnlRecord)
class PnlRecordAdmin(ReadOnlyAdmin):
    list_display = ("at", "pair_id", "plan_id", "amount", "ref")

"""Operators watch and steer plans here; every state change goes through the same `scheduler.control`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from arbsite.errors import ApiError
from twap import scheduler
from twap.models import Plan, Slice, SliceOrder


class SliceInline(admin.TabularInline):
    model = Slice
    extra = 0
    can_delete = False
    fields = ("index", "qty", "catch_up", "state", "due_at", "attempts", "deferrals", "note", "finished_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _control(action: str) -> Any:
    def run(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Plan]) -> None:
        for plan in queryset:
            try:
                scheduler.control(plan.plan_id, action)
            except ApiError as exc:
                modeladmin.message_user(request, f"{plan.plan_id}: {exc.detail}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{plan.plan_id}: {action} done", messages.SUCCESS)

    run.__name__ = f"{action}_plans"
    run.short_description = f"{action.capitalize()} selected plans"  # type: ignore[attr-defined]
    return run


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("plan_id", "name", "state", "total_qty", "slice_qty", "interval_ms", "leg1_exchange",
                    "leg1_side", "leg2_exchange", "leg2_side", "executed", "last_execution_at")
    list_filter = ("state",)
    search_fields = ("plan_id", "name")
    readonly_fields = ("plan_id", "uid", "seq", "state", "state_reason", "started_at", "finished_at",
                       "last_execution_at", "created_at", "updated_at", "executed")
    inlines = [SliceInline]
    actions = [_control("start"), _control("pause"), _control("resume"), _control("cancel")]

    @admin.display(description="executed (both legs)")
    def executed(self, plan: Plan) -> str:
        p = plan.progress()
        return f"{p.executed.normalize():f} (leg 1 {p.leg1.executed.normalize():f}, leg 2 {p.leg2.executed.normalize():f})"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # plans are created through the API, which checks both markets


@admin.register(SliceOrder)
class SliceOrderAdmin(admin.ModelAdmin):
    list_display = ("client_order_id", "slice", "leg", "exchange", "symbol", "side", "qty", "state", "filled_qty",
                    "avg_price", "paper")
    list_filter = ("state", "exchange", "paper")
    search_fields = ("client_order_id", "exchange_order_id")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # what the venues said is not edited by hand

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

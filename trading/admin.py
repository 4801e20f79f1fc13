"""Operators manage pairs here too; the same market checks as the API run on save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from arbsite.errors import ApiError
from exchanges.symbols import Exchange, Instrument, MarketType, SymbolError, normalise_symbol, split_symbol
from trading import pair_validation
from trading.execution_models import Execution, ExecutionOrder, LegRiskStep
from trading.models import Pair
from trading.opportunity_models import Opportunity


class PairAdminForm(forms.ModelForm):
    class Meta:
        model = Pair
        fields = (
            "id",
            "enabled",
            "auto_execute",
            "direction",
            "leg1_exchange",
            "leg1_symbol",
            "leg1_type",
            "leg2_exchange",
            "leg2_symbol",
            "leg2_type",
            "threshold",
            "qty",
            "total_amount",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left empty, the id is generated from the legs (bybit_binance_btc, then _2, ...).
        self.fields["id"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        legs: list[Instrument] = []
        for n in (1, 2):
            try:
                symbol = normalise_symbol(data.get(f"leg{n}_symbol") or "")
                split_symbol(symbol)
            except SymbolError as exc:
                self.add_error(f"leg{n}_symbol", str(exc))
                continue
            data[f"leg{n}_symbol"] = symbol
            if data.get(f"leg{n}_exchange") and data.get(f"leg{n}_type"):
                legs.append(Instrument(Exchange(data[f"leg{n}_exchange"]), symbol, MarketType(data[f"leg{n}_type"])))
        if self.errors or len(legs) != 2 or data.get("qty") is None or data.get("total_amount") is None:
            return data
        if legs[0] == legs[1]:
            return data  # the model's own check says so
        instance = self.instance
        if instance.pk and (instance.leg1, instance.leg2, instance.qty, instance.total_amount) == (
            legs[0],
            legs[1],
            data["qty"],
            data["total_amount"],
        ):
            return data  # nothing traded changed: toggles work while an exchange is down
        try:
            result = pair_validation.check_pair(legs[0], legs[1], data["qty"], data["total_amount"])
        except ApiError as exc:
            raise forms.ValidationError(f"{exc.error_code}: {exc.detail}") from exc
        for name, messages in result.errors.items():
            if isinstance(messages, dict):  # {"leg1": {"symbol": [...]}}
                for inner in messages.values():
                    self.add_error(f"{name}_symbol", inner)
            else:
                self.add_error({"qty": "qty", "totalAmount": "total_amount"}.get(name), messages)
        return data


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    form = PairAdminForm
    list_display = (
        "id",
        "leg1_exchange",
        "leg1_symbol",
        "leg1_type",
        "leg2_exchange",
        "leg2_symbol",
        "leg2_type",
        "threshold",
        "qty",
        "total_amount",
        "direction",
        "enabled",
        "auto_execute",
        "updated_at",
    )
    list_filter = ("enabled", "auto_execute", "direction", "leg1_exchange", "leg2_exchange", "leg1_type", "leg2_type")
    list_editable = ("enabled",)
    search_fields = ("id", "leg1_symbol", "leg2_symbol")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "enabled", "auto_execute", "direction")}),
        ("Leg 1", {"fields": ("leg1_exchange", "leg1_symbol", "leg1_type")}),
        ("Leg 2", {"fields": ("leg2_exchange", "leg2_symbol", "leg2_type")}),
        ("Sizing", {"fields": ("threshold", "qty", "total_amount")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )


class ExecutionOrderInline(admin.TabularInline):
    model = ExecutionOrder
    extra = 0
    can_delete = False
    fields = ("leg", "purpose", "attempt", "client_order_id", "exchange", "symbol", "side", "qty", "price",
              "state", "filled_qty", "avg_price", "fee", "paper", "error_code")
    readonly_fields = fields


class LegRiskStepInline(admin.TabularInline):
    model = LegRiskStep
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in LegRiskStep._meta.fields if f.name != "id"]


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    """Read-only history: executions are written by the engine, never edited by hand."""

    list_display = ("id", "pair_key", "trigger", "state", "paper", "qty", "spread", "fees", "pnl", "created_at")
    list_filter = ("state", "trigger", "paper", "leg1_exchange", "leg2_exchange")
    search_fields = ("pair_key", "uid")
    inlines = [ExecutionOrderInline, LegRiskStepInline]

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in Execution._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("pair_key", "direction", "detected_at", "ended_at", "net_edge_percent", "max_net_edge_percent",
                    "updates", "venue", "source")
    list_filter = ("direction", "venue", "source")
    search_fields = ("pair_key", "episode")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in Opportunity._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

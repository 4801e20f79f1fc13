"""Operators manage pairs here too; the same market checks as the API run on save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from arbsite.errors import ApiError
from trading import pair_validation
from trading.models import Pair


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

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        instance = self.instance
        tradeable = (
            "leg1_exchange",
            "leg1_symbol",
            "leg1_type",
            "leg2_exchange",
            "leg2_symbol",
            "leg2_type",
            "qty",
            "total_amount",
        )
        if instance.pk and not any(name in self.changed_data for name in tradeable):
            return data
        try:
            result = pair_validation.check_pair(instance.leg1, instance.leg2, instance.qty, instance.total_amount)
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

"""Admin for keys, tokens and the audit trail: masked, read-only, never a secret round trip.

Keys are entered through the Settings API (which encrypts them); the admin can see that a
key exists and delete it, nothing more. Audit records are append-only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from exchanges import credentials
from exchanges.models import AuditAction, AuditRecord, ExchangeCredential, OperatorToken


@admin.register(ExchangeCredential)
class ExchangeCredentialAdmin(admin.ModelAdmin):
    list_display = ("exchange", "masked_key", "has_passphrase", "active_source", "updated_at", "updated_by")
    fields = ("exchange", "masked_key", "has_passphrase", "active_source", "updated_at", "updated_by")
    readonly_fields = fields

    @admin.display(description="API key")
    def masked_key(self, obj: ExchangeCredential) -> str:
        return obj.masked_key

    @admin.display(boolean=True, description="passphrase")
    def has_passphrase(self, obj: ExchangeCredential) -> bool:
        return bool(obj.passphrase_encrypted)

    @admin.display(description="keys in use")
    def active_source(self, obj: ExchangeCredential) -> str:
        source = credentials.key_source(obj.exchange)
        if source.problem:
            return f"{source.source or 'none'} ({source.problem})"
        return {"env": "environment (overrides these)", "stored": "these (encrypted)"}.get(source.source or "", "none")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are added through the Settings API, which encrypts them

    def delete_model(self, request: HttpRequest, obj: ExchangeCredential) -> None:
        credentials.delete_credentials(obj.exchange)
        AuditRecord.record(AuditAction.API_KEYS_DELETED, request=request, exchange=obj.exchange,
                           detail={"via": "admin"})

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in list(queryset):
            self.delete_model(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OperatorToken)
class OperatorTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from django.utils import timezone

        for token in queryset.filter(revoked_at=None):
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            AuditRecord.record(AuditAction.TOKEN_REVOKED, request=request, detail={"tokenId": token.pk})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, which shows the key once

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ("at", "username", "action", "exchange", "pair_id", "ip")
    list_filter = ("action", "exchange")
    search_fields = ("username", "pair_id", "action")
    readonly_fields = ("at", "user", "username", "action", "exchange", "pair_id", "detail", "ip")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

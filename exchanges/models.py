"""Trading credentials (encrypted at rest), operator API tokens, and the audit trail.

Nothing here ever holds a secret in clear text: credentials are AES-GCM ciphertexts
(see `exchanges.credentials`), tokens are stored as SHA-256 digests, and audit records
refuse details whose keys look like secrets.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class ExchangeName(models.TextChoices):
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"
    BITGET = "bitget"


class ExchangeCredential(models.Model):
    """Keys saved through the Settings API; env keys (never stored) take precedence."""

    exchange = models.CharField(max_length=16, choices=ExchangeName.choices, unique=True)
    # AES-GCM ciphertexts bound to (exchange, field); see exchanges.credentials.encrypt.
    api_key_encrypted = models.TextField()
    secret_encrypted = models.TextField()
    passphrase_encrypted = models.TextField(blank=True, default="")
    # The last four characters of the API key, enough for a human to tell keys apart.
    key_hint = models.CharField(max_length=4, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["exchange"]
        verbose_name = "exchange API key"

    def __str__(self) -> str:
        return f"{self.exchange} API key {self.masked_key}"

    @property
    def masked_key(self) -> str:
        return f"••••{self.key_hint}" if self.key_hint else "••••"


# Detail keys refused in audit records: whole names, or names ending like a secret.
SECRET_NAMES = frozenset({"key", "token", "signature", "sign", "rawkey"})
SECRET_SUFFIXES = ("secret", "apikey", "passphrase", "password")


class AuditAction(models.TextChoices):
    API_KEYS_SAVED = "settings.api_keys.saved"
    API_KEYS_DELETED = "settings.api_keys.deleted"
    API_KEYS_TESTED = "settings.api_keys.tested"
    SETTINGS_CHANGED = "settings.changed"
    TOKEN_CREATED = "auth.token.created"
    TOKEN_REVOKED = "auth.token.revoked"
    MANUAL_EXECUTION = "execution.manual"


class AuditRecord(models.Model):
    """Who changed what, when, on which exchange or pair. Append-only; never a secret value."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    exchange = models.CharField(max_length=16, blank=True, default="")
    pair_id = models.CharField(max_length=100, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}"

    @classmethod
    def record(cls, action: str, *, user: Any = None, exchange: str = "", pair_id: str = "",
               detail: dict[str, Any] | None = None, request: Any = None) -> AuditRecord:
        """Write one audit line. Call it for every settings change and every manual execution.

        `detail` must describe the change, not carry it: keys that look like secrets are refused
        so a careless caller cannot put a key into the audit table.
        """
        detail = dict(detail or {})
        _refuse_secrets(detail)
        if user is None and request is not None:
            user = getattr(request, "user", None)
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        return cls.objects.create(
            action=str(action), user=user, username=user.get_username() if user is not None else "",
            exchange=exchange or "", pair_id=pair_id or "", detail=detail, ip=_client_ip(request),
        )


def _refuse_secrets(detail: Any) -> None:
    if isinstance(detail, dict):
        for k, v in detail.items():
            name = "".join(ch for ch in str(k).lower() if ch.isalpha())
            if name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES):
                raise ValueError(f"audit detail key {k!r} looks like a secret; describe the change instead")
            _refuse_secrets(v)
    elif isinstance(detail, list):
        for v in detail:
            _refuse_secrets(v)


def _client_ip(request: Any) -> str | None:
    meta = getattr(request, "META", None) or {}
    return meta.get("REMOTE_ADDR") or None


TOKEN_PREFIX = "arb_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class OperatorToken(models.Model):
    """A named API token for scripts; many per user, revocable one by one, stored as a digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)  # `arb_` + 8 chars: how the operator recognises it
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, user: Any, name: str) -> tuple[OperatorToken, str]:
        """Create a token; the raw key is returned here once and never again."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, digest=hash_token(raw), prefix=raw[:12])
        return token, raw

    @classmethod
    def user_for_key(cls, raw: str) -> Any | None:
        """The active user owning an unrevoked token, or None (also for the websocket)."""
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
            return None
        token = cls.objects.select_related("user").filter(digest=hash_token(raw), revoked_at=None).first()
        if token is None or not token.user.is_active:
            return None
        cls.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user

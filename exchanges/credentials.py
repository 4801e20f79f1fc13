"""Trading credentials: where they come from, how they are kept, and how they are checked.

- **Environment first**: `{EXCHANGE}_API_KEY`, `{EXCHANGE}_API_SECRET` and, for OKX and
  Bitget, `{EXCHANGE}_API_PASSPHRASE`. Env keys are never written anywhere.
- **Then keys saved through the Settings API**, stored with AES-GCM (authenticated
  encryption, `cryptography`) under `CREDENTIALS_ENCRYPTION_KEY`; each ciphertext is bound
  to its exchange and field, so a ciphertext copied into another row fails to decrypt.
  Without that key the API refuses to store secrets (`ENCRYPTION_KEY_MISSING`).
- Keys leave this module only as ccxt constructor kwargs (`apiKey`, `secret`, `password`)
  for the process that places orders or reads the account. No endpoint, event or log line
  receives them; status answers say only whether keys exist and where they came from.

Generate an encryption key (32 random bytes, urlsafe base64; a Fernet key works too):
    python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"
Several comma-separated keys may be given: the first encrypts, all are tried to decrypt
(key rotation: put the new key first, re-save the credentials, then drop the old key).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import DatabaseError

from arbsite.errors import ApiError, ValidationFailed
from arbsite.logging import register_secret
from arbsite.redis_client import get_redis, key
from exchanges.symbols import Exchange

logger = logging.getLogger("exchanges.credentials")

T = TypeVar("T")

ENCRYPTION_KEY_SETTING = "CREDENTIALS_ENCRYPTION_KEY"
CIPHERTEXT_VERSION = "v1"
PASSPHRASE_EXCHANGES = frozenset({Exchange.OKX, Exchange.BITGET})
GENERATE_HINT = ('python -c "import base64, os; '
                 'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"')


class EncryptionKeyMissing(ApiError):
    status_code = 503
    default_code = "ENCRYPTION_KEY_MISSING"
    default_detail = (
        f"{ENCRYPTION_KEY_SETTING} is not set on the server, so API secrets cannot be stored encrypted "
        f"and are refused. Generate a key with {GENERATE_HINT} and set it in the environment, "
        "or provide the keys as environment variables ({EXCHANGE}_API_KEY, {EXCHANGE}_API_SECRET)."
    )


class PublicOnly(ApiError):
    """A live action was asked of an exchange that has no trading keys."""

    status_code = 409
    default_code = "PUBLIC_ONLY"
    default_detail = "No API keys are configured: this exchange runs publicOnly (paper execution)."


class CredentialsUnreadable(Exception):
    """Stored ciphertext does not decrypt with any configured key (wrong key, or tampered)."""


# --------------------------------------------------------------------------- encryption


def _configured_keys() -> list[bytes]:
    raw = str(getattr(settings, ENCRYPTION_KEY_SETTING, "") or os.environ.get(ENCRYPTION_KEY_SETTING, "")).strip()
    keys: list[bytes] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError) as exc:
            raise EncryptionKeyMissing(f"{ENCRYPTION_KEY_SETTING} is not valid urlsafe base64; "
                                       f"generate one with {GENERATE_HINT}") from exc
        if len(decoded) != 32:
            raise EncryptionKeyMissing(f"{ENCRYPTION_KEY_SETTING} must decode to 32 bytes (got {len(decoded)}); "
                                       f"generate one with {GENERATE_HINT}")
        keys.append(decoded)
    return keys


def encryption_available() -> bool:
    try:
        return bool(_configured_keys())
    except EncryptionKeyMissing:
        return False


def _aad(exchange: str, field: str) -> bytes:
    return f"arbsite:credential:{exchange}:{field}".encode()


def encrypt(plaintext: str, exchange: str, field: str) -> str:
    keys = _configured_keys()
    if not keys:
        raise EncryptionKeyMissing()
    nonce = os.urandom(12)
    sealed = AESGCM(keys[0]).encrypt(nonce, plaintext.encode(), _aad(exchange, field))
    return f"{CIPHERTEXT_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, exchange: str, field: str) -> str:
    version, _, body = token.partition(":")
    if version != CIPHERTEXT_VERSION or not body:
        raise CredentialsUnreadable(f"unknown ciphertext format for {exchange} {field}")
    keys = _configured_keys()
    if not keys:
        raise CredentialsUnreadable(f"{ENCRYPTION_KEY_SETTING} is not set; stored keys cannot be read")
    blob = base64.urlsafe_b64decode(body)
    for candidate in keys:
        try:
            return AESGCM(candidate).decrypt(blob[:12], blob[12:], _aad(exchange, field)).decode()
        except InvalidTag:
            continue
    raise CredentialsUnreadable(f"stored {exchange} keys do not decrypt with {ENCRYPTION_KEY_SETTING}")


# --------------------------------------------------------------------------- sources


def env_names(exchange: Exchange | str) -> dict[str, str]:
    """The env variables read for `exchange`: ccxt kwarg -> variable name."""
    name = Exchange(exchange).value.upper()
    return {"apiKey": f"{name}_API_KEY", "secret": f"{name}_API_SECRET", "password": f"{name}_API_PASSPHRASE"}


def _complete(exchange: Exchange, creds: dict[str, str]) -> bool:
    if not creds.get("apiKey") or not creds.get("secret"):
        return False
    return exchange not in PASSPHRASE_EXCHANGES or bool(creds.get("password"))


def _from_env(exchange: Exchange) -> dict[str, str]:
    names = env_names(exchange)
    creds = {kwarg: os.environ.get(var, "").strip() for kwarg, var in names.items()}
    if not creds["secret"]:  # the older spelling some deployments use
        creds["secret"] = os.environ.get(f"{exchange.value.upper()}_SECRET", "").strip()
    if not creds["password"]:
        creds["password"] = os.environ.get(f"{exchange.value.upper()}_PASSPHRASE", "").strip()
    return _registered({k: v for k, v in creds.items() if v})


def _registered(creds: dict[str, str]) -> dict[str, str]:
    """Every key value this process reads is masked in its logs from then on."""
    for value in creds.values():
        register_secret(value)
    return creds


def _off_the_loop(fn: Callable[[], T]) -> T:
    """Run a small ORM read; inside an event loop it runs in a thread of its own (Django forbids it on the loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()

    def in_thread() -> T:
        from django.db import connections

        try:
            return fn()
        finally:
            connections.close_all()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(in_thread).result(timeout=10)


def _stored_row(exchange: Exchange) -> Any | None:
    from exchanges.models import ExchangeCredential

    try:
        return _off_the_loop(lambda: ExchangeCredential.objects.filter(exchange=exchange.value).first())
    except DatabaseError as exc:
        # No readable store (unmigrated, database down): the safe reading is publicOnly, loudly.
        logger.error("credentials store unreadable", extra={"event": "credentials_store_unavailable",
                                                             "exchange": exchange.value,
                                                             "detail": type(exc).__name__})
        return None


def _from_store(exchange: Exchange) -> dict[str, str]:
    row = _stored_row(exchange)
    if row is None:
        return {}
    creds = {
        "apiKey": decrypt(row.api_key_encrypted, exchange.value, "apiKey"),
        "secret": decrypt(row.secret_encrypted, exchange.value, "secret"),
    }
    if row.passphrase_encrypted:
        creds["password"] = decrypt(row.passphrase_encrypted, exchange.value, "password")
    return _registered(creds)


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where an exchange's keys come from, without the keys: safe to show anywhere."""

    source: str | None  # "env", "stored" or None
    complete: bool
    problem: str | None = None


def key_source(exchange: Exchange | str) -> KeySource:
    exchange = Exchange(exchange)
    env = _from_env(exchange)
    if _complete(exchange, env):
        return KeySource("env", True)
    try:
        stored = _from_store(exchange)
    except CredentialsUnreadable as exc:
        return KeySource("stored", False, str(exc))
    if _complete(exchange, stored):
        return KeySource("stored", True)
    if env:
        missing = [var for kwarg, var in env_names(exchange).items()
                   if kwarg not in env and (kwarg != "password" or exchange in PASSPHRASE_EXCHANGES)]
        return KeySource("env", False, f"incomplete env keys: {', '.join(missing)} not set")
    return KeySource(None, False)


def credentials_for(exchange: Exchange | str) -> dict[str, str] | None:
    """ccxt kwargs (`apiKey`, `secret`, `password`) for `exchange`, env first; None when there are none.

    Only the code that builds an authenticated ccxt client should call this.
    """
    exchange = Exchange(exchange)
    env = _from_env(exchange)
    if _complete(exchange, env):
        return env
    try:
        stored = _from_store(exchange)
    except CredentialsUnreadable as exc:
        logger.error("stored credentials unreadable", extra={"event": "credentials_unreadable",
                                                              "exchange": exchange.value, "detail": str(exc)})
        return None
    return stored if _complete(exchange, stored) else None


def has_trading_keys(exchange: Exchange | str) -> bool:
    """True when `exchange` has complete, readable trading keys (so it trades live, not paper)."""
    return key_source(exchange).complete


def require_live_credentials(exchange: Exchange | str) -> dict[str, str]:
    """The keys for a live action, or a PUBLIC_ONLY refusal that says why and how to fix it."""
    exchange = Exchange(exchange)
    creds = credentials_for(exchange)
    if creds is None:
        source = key_source(exchange)
        names = env_names(exchange)
        needed = f"{names['apiKey']}/{names['secret']}" + (
            f"/{names['password']}" if exchange in PASSPHRASE_EXCHANGES else "")
        reason = f" ({source.problem})" if source.problem else ""
        raise PublicOnly(f"{exchange.value} has no usable API keys{reason}: it runs publicOnly and only paper "
                         f"execution is possible. Add keys in Settings or set {needed}.")
    return creds


# --------------------------------------------------------------------------- saving


def save_credentials(exchange: Exchange | str, api_key: str, secret: str, passphrase: str = "",
                     user: Any = None) -> None:
    from exchanges.models import ExchangeCredential

    exchange = Exchange(exchange)
    api_key, secret, passphrase = api_key.strip(), secret.strip(), (passphrase or "").strip()
    _registered({"apiKey": api_key, "secret": secret, "password": passphrase})
    if exchange in PASSPHRASE_EXCHANGES and not passphrase:
        raise ValidationFailed(f"{exchange.value} keys need a passphrase")
    if not encryption_available():
        _configured_keys()  # raises the precise reason when the key is malformed
        raise EncryptionKeyMissing()
    ExchangeCredential.objects.update_or_create(
        exchange=exchange.value,
        defaults={
            "api_key_encrypted": encrypt(api_key, exchange.value, "apiKey"),
            "secret_encrypted": encrypt(secret, exchange.value, "secret"),
            "passphrase_encrypted": encrypt(passphrase, exchange.value, "password") if passphrase else "",
            "key_hint": api_key[-4:] if len(api_key) >= 16 else "",
            "updated_by": user if getattr(user, "is_authenticated", False) else None,
        },
    )
    forget_test_result(exchange)


def delete_credentials(exchange: Exchange | str) -> bool:
    from exchanges.models import ExchangeCredential

    exchange = Exchange(exchange)
    deleted, _ = ExchangeCredential.objects.filter(exchange=exchange.value).delete()
    forget_test_result(exchange)
    return bool(deleted)


# --------------------------------------------------------------------------- testing keys


def _test_key(exchange: Exchange) -> str:
    return key("credentials", "last_test", exchange.value)


def remember_test_result(exchange: Exchange, result: dict[str, Any]) -> None:
    """Keep the outcome (never the keys) so the Settings page can show it after a reload."""
    safe = {k: result.get(k) for k in ("connected", "ts", "error", "permissions", "warnings")}
    get_redis().set(_test_key(exchange), json.dumps(safe), ex=7 * 24 * 3600)


def last_test_result(exchange: Exchange) -> dict[str, Any] | None:
    raw = get_redis().get(_test_key(exchange))
    return json.loads(raw) if raw else None


def forget_test_result(exchange: Exchange) -> None:
    get_redis().delete(_test_key(exchange))


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


async def _binance_permissions(client: Any) -> dict[str, Any]:
    raw = await client.sapi_get_account_apirestrictions()
    return {"withdrawals": _flag(raw.get("enableWithdrawals")),
            "trading": _flag(raw.get("enableSpotAndMarginTrading")),
            "futures": _flag(raw.get("enableFutures")),
            "ipRestricted": _flag(raw.get("ipRestrict"))}


async def _bybit_permissions(client: Any) -> dict[str, Any]:
    result = (await client.private_get_v5_user_query_api()).get("result") or {}
    perms = result.get("permissions") or {}
    ips = result.get("ips") or []
    return {"withdrawals": "Withdraw" in (perms.get("Wallet") or []),
            "trading": not _flag(result.get("readOnly")),
            "futures": bool(perms.get("ContractTrade") or perms.get("Derivatives")),
            "ipRestricted": bool(ips) and ips != ["*"]}


async def _okx_permissions(client: Any) -> dict[str, Any]:
    data = ((await client.private_get_account_config()).get("data") or [{}])[0]
    perm = str(data.get("perm") or "").lower()
    return {"withdrawals": "withdraw" in perm, "trading": "trade" in perm, "futures": None,
            "ipRestricted": bool(data.get("ip"))}


async def _bitget_permissions(client: Any) -> dict[str, Any]:
    data = (await client.private_spot_get_v2_spot_account_info()).get("data") or {}
    auths = [str(a).lower() for a in data.get("authorities") or []]
    return {"withdrawals": any("withdraw" in a for a in auths), "trading": any("trade" in a for a in auths),
            "futures": None, "ipRestricted": bool(data.get("ips"))}


PERMISSION_READERS: dict[Exchange, Callable[[Any], Any]] = {
    Exchange.BINANCE: _binance_permissions,
    Exchange.BYBIT: _bybit_permissions,
    Exchange.OKX: _okx_permissions,
    Exchange.BITGET: _bitget_permissions,
}


def permission_warnings(exchange: Exchange, perms: dict[str, Any]) -> list[str]:
    warnings = []
    if perms.get("withdrawals"):
        warnings.append(f"WITHDRAWALS ARE ENABLED on this {exchange.value} API key. This desk never withdraws: "
                        "replace it with a key that has withdrawals disabled, restricted to this server's IP.")
    if perms.get("trading") is False:
        warnings.append(f"this {exchange.value} key cannot trade (read-only): executions will be rejected")
    if perms.get("ipRestricted") is False:
        warnings.append(f"this {exchange.value} key is not restricted to an IP address")
    return warnings


async def test_credentials(exchange: Exchange | str, creds: dict[str, str]) -> dict[str, Any]:
    """Sign a balance request with `creds`, then read the key's permissions where the exchange exposes them.

    Raises the translated ApiError (e.g. `AUTHENTICATION_FAILED`) when the exchange refuses the keys.
    """
    from exchanges import connectivity

    exchange = Exchange(exchange)
    client = connectivity.async_client(exchange, creds)
    try:
        await connectivity.call(exchange, client.fetch_balance)
        try:
            permissions: dict[str, Any] | None = await PERMISSION_READERS[exchange](client)
        except (ccxt.BaseError, ApiError, LookupError, TypeError, ValueError, AttributeError,
                OSError, TimeoutError) as exc:  # the balance call proved the keys; this is best effort
            error = connectivity.translate(exc, exchange)
            logger.info("key permissions unreadable", extra={"event": "key_permissions_unknown",
                                                              "exchange": exchange.value,
                                                              "error_code": error.error_code})
            permissions = None
    finally:
        await client.close()
    warnings = permission_warnings(exchange, permissions or {})
    if permissions is None:
        warnings.append(f"could not read the {exchange.value} key's permissions: check that withdrawals are disabled")
    if permissions and permissions.get("withdrawals"):
        logger.warning("API key with withdrawals enabled", extra={"event": "api_key_withdrawals_enabled",
                                                                   "exchange": exchange.value})
    return {"exchange": exchange.value, "connected": True, "permissions": permissions, "warnings": warnings}


def scrub(text: str, creds: dict[str, str] | None) -> str:
    """Remove any credential value from a message before it goes anywhere (belt and braces)."""
    for value in (creds or {}).values():
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text

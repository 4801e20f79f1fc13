"""Structured logs: JSON lines with the SPEC's fields, secrets redacted, GET noise dropped."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

# Fields the SPEC names; anything passed through `extra=` with these names is kept.
STRUCTURED_FIELDS = (
    "event",
    "exchange",
    "pairId",
    "symbol",
    "latency_ms",
    "success",
    "error_code",
    "path",
    "method",
    "status",
    "user",
    "view",
    "planId",
    "detail",
)

# Credential-looking names in `name=value`, `"name": "value"` or `'name': 'value'` form,
# including every exchange's auth headers as ccxt logs them (its DEBUG request lines).
_SECRET_NAMES = (
    r"api_?key|apiKey|secret|passphrase|password|signature|sign|"
    r"X-MBX-APIKEY|X-BAPI-API-KEY|X-BAPI-SIGN|OK-ACCESS-KEY|OK-ACCESS-SIGN|OK-ACCESS-PASSPHRASE|"
    r"ACCESS-KEY|ACCESS-SIGN|ACCESS-PASSPHRASE"
)
_SECRET_PATTERNS = [
    re.compile(r"""(["']?\b(?:""" + _SECRET_NAMES + r""")["']?\s*[:=]\s*["']?)([^"'&,\s}]+)""", re.I),
    re.compile(r"""(["']?Authorization["']?\s*[:=]\s*["']?(?:(?:Token|Bearer|Basic)\s+)?)([^"'&,\s}]+)""", re.I),
]

# Values known to be secrets (trading keys as exchanges.credentials reads them): masked
# wherever they appear, whatever surrounds them.
_KNOWN_SECRETS: set[str] = set()
MIN_KNOWN_SECRET_LENGTH = 6


def register_secret(value: str | None) -> None:
    """Mask this exact value in every log line from now on (call it for each key a process loads)."""
    if value and len(value) >= MIN_KNOWN_SECRET_LENGTH:
        _KNOWN_SECRETS.add(value)


def redact(text: str) -> str:
    for value in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Last line of defence: masks anything that looks like a credential in a log line.

    The message is formatted here (arguments of any type, e.g. the header dicts ccxt logs)
    and the traceback text too, so handlers after this one only ever see the masked text.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in STRUCTURED_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                payload[field] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str))


request_logger = logging.getLogger("arbsite.http")
perf_logger = logging.getLogger("arbsite.perf")

SLOW_REQUEST_MS = 500.0


def _envelope_error_code(response: HttpResponse) -> str | None:
    """The envelope's `error.code` of an error response, when it is one of ours."""
    if "json" not in response.get("Content-Type", "") or getattr(response, "streaming", False):
        return None
    try:
        body = json.loads(response.content[:4096])
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) and error.get("code") else None


def _username(request: HttpRequest) -> str | None:
    """The user already resolved for this request, without triggering a lookup (unsafe in async code)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        wrapped = user._wrapped  # type: ignore[attr-defined]
        if wrapped is empty:
            return None
        user = wrapped
    return getattr(user, "username", None) or None


def _resolved_username(request: HttpRequest) -> str | None:
    """Sync requests only: resolving the lazy user may query the session store."""
    return getattr(getattr(request, "user", None), "username", None) or None


class RequestLogMiddleware:
    """Logs errors (>= 400) always and slow requests as performance events; drops GET noise.

    Works in both modes, so an async view (the prices hot path) never hops to a thread for it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        response = self.get_response(request)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if request.path.startswith("/api/"):
            from arbsite import metrics

            metrics.observe_api_latency(latency_ms, response.status_code,
                                        extra=request.__dict__.get(metrics.REQUEST_COUNTS_ATTR))
        self._log(request, response, latency_ms, _username(request) or _resolved_username(request))
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = await self.get_response(request)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if request.path.startswith("/api/"):
            from arbsite import metrics

            await metrics.aobserve_api_latency(latency_ms, response.status_code,
                                               request.__dict__.get(metrics.REQUEST_COUNTS_ATTR))
        self._log(request, response, latency_ms, _username(request))
        return response

    def _log(self, request: HttpRequest, response: HttpResponse, latency_ms: float, user: str | None) -> None:
        extra = {
            "event": "http_request",
            "path": request.path,
            "method": request.method,
            "status": response.status_code,
            "latency_ms": latency_ms,
            "user": user,
            "success": response.status_code < 400,
        }
        if response.status_code >= 400:
            extra["error_code"] = _envelope_error_code(response)
        if response.status_code >= 500:
            request_logger.error("%s %s -> %s", request.method, request.path, response.status_code, extra=extra)
        elif response.status_code >= 400:
            request_logger.warning("%s %s -> %s", request.method, request.path, response.status_code, extra=extra)
        elif request.method not in ("GET", "HEAD", "OPTIONS"):
            request_logger.info("%s %s -> %s", request.method, request.path, response.status_code, extra=extra)
        if latency_ms >= SLOW_REQUEST_MS:
            perf_logger.info("slow request %s %s", request.method, request.path, extra={**extra, "event": "slow_request"})

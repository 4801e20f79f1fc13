"""The prices hot path at the ASGI layer: `GET /api/prices/{exchange}/{symbol}`.

Django's middleware mixin hops to a worker thread twice per middleware under ASGI, which costs
more than the whole cached-book answer. This app answers that one read path directly with the
same semantics as the Django view (`exchanges.views.price_view`): token or session
authentication, the envelope, the same error codes, the security headers, metrics and error
logs. Anything it does not handle (other paths or methods, a request it cannot authenticate
here) goes to Django unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import time
from http.cookies import SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user

from arbsite import metrics
from arbsite.async_api import authenticated_user_for_token
from arbsite.errors import ApiError, ErrorCode, error_body

logger = logging.getLogger("arbsite.http")

PRICES_PATH = re.compile(r"^/api/prices/(?P<exchange>[^/]+)/(?P<symbol>[^/]+)/?$")
SESSION_CACHE_SECONDS = 5.0
_SESSIONS: dict[str, tuple[Any, float]] = {}


async def _session_user(cookie_header: str) -> Any | None:
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # noqa: BLE001 - a malformed cookie is simply no session
        return None
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return None
    now = time.monotonic()
    hit = _SESSIONS.get(morsel.value)
    if hit is not None and hit[1] > now:
        return hit[0]
    store = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    # get_user also checks the session's auth hash (a password change logs sessions out).
    found = await sync_to_async(get_user)(SimpleNamespace(session=store))  # type: ignore[arg-type]
    if not found.is_authenticated:
        return None
    if len(_SESSIONS) > 1000:
        _SESSIONS.clear()
    _SESSIONS[morsel.value] = (found, now + SESSION_CACHE_SECONDS)
    return found


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


SECURITY_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"vary", b"Cookie, Authorization"),
]


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*SECURITY_HEADERS, (b"content-length", str(len(payload)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})


def with_prices_fast_path(django_app: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = PRICES_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "GET":
            return await django_app(scope, receive, send)
        started = time.perf_counter()
        headers = _headers(scope)
        scheme, _, raw = headers.get("authorization", "").partition(" ")
        user = None
        if raw.strip() and scheme.lower() in ("token", "bearer"):
            user = await authenticated_user_for_token(raw.strip())
        elif "cookie" in headers:
            user = await _session_user(headers["cookie"])
        if user is None and not raw.strip():
            # No credentials we can check here (or none at all): Django answers, exactly as before.
            return await django_app(scope, receive, send)

        from exchanges import prices

        counts: dict[str, int] = {}
        status = 200
        if user is None:
            status, body, extra = 401, error_body(ErrorCode.AUTHENTICATION_REQUIRED, "Invalid token."), [
                (b"www-authenticate", b"Token")]
        else:
            extra = []
            try:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                market_type = (query.get("type") or [None])[0]
                instrument = prices.parse_instrument(unquote(match["exchange"]), unquote(match["symbol"]), market_type)
                request = SimpleNamespace()
                data = await prices.aget_book(instrument, request)
                counts = request.__dict__.get(metrics.REQUEST_COUNTS_ATTR, {})
                body = {"success": True, "data": data}
            except ApiError as exc:
                status, body = exc.status_code, error_body(exc.error_code, str(exc.detail))
            except Exception:
                logger.exception("unhandled API error", extra={"event": "api_unhandled_error", "path": scope["path"],
                                                              "error_code": ErrorCode.INTERNAL_ERROR})
                status, body = 500, error_body(ErrorCode.INTERNAL_ERROR, "Internal error; it has been logged.")
        await _send_json(send, status, body, extra)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        await metrics.aobserve_api_latency(latency_ms, status, counts)
        if status >= 400:
            log = logger.error if status >= 500 else logger.warning
            log("GET %s -> %s", scope["path"], status, extra={
                "event": "http_request", "path": scope["path"], "method": "GET", "status": status,
                "latency_ms": latency_ms, "success": False, "error_code": body["error"]["code"],
                "user": getattr(user, "username", None)})

    return app

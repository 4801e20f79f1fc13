"""Native async API views for hot read paths: same envelope, same authentication, no thread hop.

DRF views are synchronous, so under daphne each one runs in a worker thread. The few endpoints
that are polled hard (cached order books) are plain async Django views built with `api_view`
below: authentication (operator/DRF token or session), the envelope, and ApiError mapping match
the DRF views exactly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from arbsite.errors import ApiError, ErrorCode, error_body

logger = logging.getLogger("arbsite.api")

# A token seen valid is trusted this long in this process (revocation takes effect within it).
TOKEN_CACHE_SECONDS = 5.0
_TOKEN_CACHE: dict[str, tuple[Any, float]] = {}
_TOKEN_CACHE_MAX = 1000


def _lookup_token(raw: str) -> Any | None:
    for path in getattr(settings, "WS_TOKEN_LOOKUPS", ["arbsite.ws_auth.drf_token_user"]):
        user = import_string(path)(raw)
        if user is not None:
            return user
    return None


async def authenticated_user(request: HttpRequest) -> Any | None:
    """`Authorization: Token|Bearer <key>` first (as DRF), then the session; None when anonymous."""
    forced = getattr(request, "_force_auth_user", None)  # DRF's test client, honoured as DRF does
    if forced is not None:
        return forced
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()
    if raw and scheme.lower() in ("token", "bearer"):
        return await authenticated_user_for_token(raw)
    user = await request.auser()  # type: ignore[attr-defined]
    return user if user.is_authenticated else None


async def authenticated_user_for_token(raw: str) -> Any | None:
    """The active user owning an operator or DRF token (cached briefly), or None."""
    now = time.monotonic()
    hit = _TOKEN_CACHE.get(raw)
    if hit is not None and hit[1] > now:
        return hit[0]
    user = await sync_to_async(_lookup_token)(raw)
    if user is not None:
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[raw] = (user, now + TOKEN_CACHE_SECONDS)
    return user


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(json.dumps(body, separators=(",", ":")), status=status,
                        content_type="application/json", headers=headers)


AsyncView = Callable[..., Awaitable[Any]]


def api_view(*methods: str) -> Callable[[AsyncView], Callable[..., Any]]:
    """Wrap an async function returning data into the envelope, with auth and error mapping."""

    def decorate(fn: AsyncView) -> Callable[..., Any]:
        @wraps(fn)
        async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return json_response(error_body(ErrorCode.METHOD_NOT_ALLOWED, f'Method "{request.method}" not allowed.'),
                                     405, {"Allow": ", ".join(methods)})
            try:
                user = await authenticated_user(request)
                if user is None:
                    return json_response(
                        error_body(ErrorCode.AUTHENTICATION_REQUIRED, "Authentication credentials were not provided."),
                        401, {"WWW-Authenticate": "Token"},
                    )
                request.user = user
                data = await fn(request, *args, **kwargs)
            except ApiError as exc:
                return json_response(error_body(exc.error_code, str(exc.detail)), exc.status_code)
            except Exception:
                logger.exception("unhandled API error", extra={"event": "api_unhandled_error", "path": request.path,
                                                              "method": request.method,
                                                              "error_code": ErrorCode.INTERNAL_ERROR})
                return json_response(error_body(ErrorCode.INTERNAL_ERROR, "Internal error; it has been logged."), 500)
            return json_response({"success": True, "data": data})

        return view

    return decorate

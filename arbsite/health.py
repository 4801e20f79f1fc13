"""`/health` (database, Redis, market-data heartbeat) and `/metrics` (Prometheus text)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from arbsite import metrics
from arbsite.redis_client import get_redis, key

HEARTBEAT_KEY_PARTS = ("marketdata", "heartbeat")


def marketdata_heartbeat() -> dict[str, Any] | None:
    raw = get_redis().get(key(*HEARTBEAT_KEY_PARTS))
    return json.loads(raw) if raw else None


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        return {"ok": False, "error": type(exc).__name__}


def _check_redis() -> dict[str, Any]:
    try:
        get_redis().ping()
        return {"ok": True}
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}


def _check_marketdata() -> dict[str, Any]:
    try:
        beat = marketdata_heartbeat()
    except redis.RedisError:
        return {"ok": False, "error": "redis unavailable"}
    if beat is None:
        return {"ok": False, "error": "market-data process has not reported"}
    age = time.time() - float(beat.get("ts", 0))
    return {"ok": age < settings.MARKETDATA_STALE_SECONDS, "ageSeconds": round(age, 3), "streams": beat.get("streams", {})}


def health_view(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis(), "marketdata": _check_marketdata()}
    core_ok = checks["database"]["ok"] and checks["redis"]["ok"]
    status = "ok" if core_ok and checks["marketdata"]["ok"] else ("degraded" if core_ok else "down")
    body = {
        "success": core_ok,
        "data": {"status": status, "checks": checks, "venue": "emulator" if settings.EXCHANGE_VENUE_URL else "live"},
    }
    if not core_ok:
        body["error"] = {"code": "INTERNAL_ERROR", "message": "database or redis down"}
    return JsonResponse(body, status=200 if core_ok else 503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    try:
        text = metrics.prometheus_text()
    except redis.RedisError:
        return HttpResponse("# metrics unavailable: redis down\n", status=503, content_type="text/plain")
    return HttpResponse(text, content_type="text/plain; version=0.0.4")

"""Performance counters shared by every process (kept in Redis) and their Prometheus text."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import redis

from arbsite.redis_client import get_redis, key

logger = logging.getLogger("arbsite.perf")

SAMPLES_KEPT = 2000


def incr(name: str, amount: int = 1) -> None:
    try:
        get_redis().incrby(key("metrics", "count", name), amount)
    except redis.RedisError:
        logger.warning("metrics unavailable", extra={"event": "metrics_unavailable"})


def observe(name: str, value_ms: float) -> None:
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.lpush(key("metrics", "samples", name), round(value_ms, 3))
        pipe.ltrim(key("metrics", "samples", name), 0, SAMPLES_KEPT - 1)
        pipe.execute()
    except redis.RedisError:
        logger.warning("metrics unavailable", extra={"event": "metrics_unavailable"})


def observe_api_latency(latency_ms: float, status_code: int) -> None:
    observe("api_latency_ms", latency_ms)
    incr("api_requests")
    if status_code >= 500:
        incr("api_errors")


def counter(name: str) -> int:
    raw = get_redis().get(key("metrics", "count", name))
    return int(raw) if raw else 0


def percentile(samples: Iterable[float], q: float) -> float | None:
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def samples(name: str) -> list[float]:
    return [float(v) for v in get_redis().lrange(key("metrics", "samples", name), 0, -1)]


def snapshot() -> dict[str, float | int | None]:
    """The figures the SPEC's acceptance list names, as they stand now."""
    hits, misses = counter("price_cache_hit"), counter("price_cache_miss")
    requests, errors = counter("api_requests"), counter("api_errors")
    api = samples("api_latency_ms")
    detection = samples("detection_latency_ms")
    ws = samples("ws_event_latency_ms")
    return {
        "api_requests": requests,
        "api_errors": errors,
        "api_error_rate": (errors / requests) if requests else None,
        "api_latency_p50_ms": percentile(api, 50),
        "api_latency_p95_ms": percentile(api, 95),
        "price_cache_hits": hits,
        "price_cache_misses": misses,
        "price_cache_hit_ratio": (hits / (hits + misses)) if hits + misses else None,
        "detection_latency_p99_ms": percentile(detection, 99),
        "ws_event_latency_p99_ms": percentile(ws, 99),
    }


def prometheus_text() -> str:
    lines = []
    for name, value in snapshot().items():
        metric = f"arbsite_{name}"
        lines.append(f"# TYPE {metric} gauge")
        lines.append(f"{metric} {'NaN' if value is None else value}")
    return "\n".join(lines) + "\n"

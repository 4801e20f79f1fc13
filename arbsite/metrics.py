"""Performance counters shared by every process (kept in Redis) and their Prometheus text.

Each counter and sample is kept twice: a lifetime total (counters) or the last
`SAMPLES_KEPT` values (samples), which `/metrics` reports, and per-minute buckets that
expire after an hour, which the performance monitor reads as a recent window. Both writes
go out in one pipelined round-trip.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from arbsite.redis_client import get_redis, key, loop_redis

logger = logging.getLogger("arbsite.perf")

SAMPLES_KEPT = 2000
# Windowed figures: one bucket per minute, kept for an hour, at most this many samples each.
BUCKET_SECONDS = 60
BUCKET_TTL_SECONDS = 3600
SAMPLES_PER_BUCKET = 1000

LATENCY_METRICS = ("api_latency_ms", "detection_latency_ms", "ws_event_latency_ms")
COUNTERS = ("api_requests", "api_errors", "price_cache_hit", "price_cache_miss", "execution_success", "execution_failure")


def _bucket(at: float) -> int:
    return int(at // BUCKET_SECONDS)


def _fill(pipe: Any, counts: Mapping[str, int], observations: Mapping[str, float], now: float | None) -> None:
    bucket = str(_bucket(time.time() if now is None else now))
    for name, amount in counts.items():
        windowed = key("metrics", "wcount", name, bucket)
        pipe.incrby(key("metrics", "count", name), amount)
        pipe.incrby(windowed, amount)
        pipe.expire(windowed, BUCKET_TTL_SECONDS)
    for name, value_ms in observations.items():
        value = round(value_ms, 3)
        windowed = key("metrics", "wsamples", name, bucket)
        pipe.lpush(key("metrics", "samples", name), value)
        pipe.ltrim(key("metrics", "samples", name), 0, SAMPLES_KEPT - 1)
        pipe.lpush(windowed, value)
        pipe.ltrim(windowed, 0, SAMPLES_PER_BUCKET - 1)
        pipe.expire(windowed, BUCKET_TTL_SECONDS)


async def arecord(counts: Mapping[str, int], observations: Mapping[str, float] | None = None) -> None:
    """`_record` for code on the web server's event loop: one pipelined round trip, never blocking it."""
    try:
        pipe = loop_redis().pipeline(transaction=False)
        _fill(pipe, counts, observations or {}, None)
        await pipe.execute()
    except redis.RedisError:
        logger.warning("metrics unavailable", extra={"event": "metrics_unavailable"})


REQUEST_COUNTS_ATTR = "_arbsite_metric_counts"


def count_with_request(request: Any, name: str, amount: int = 1) -> None:
    """Count `name` in the same Redis round trip as the request's latency (see RequestLogMiddleware)."""
    counts = request.__dict__.setdefault(REQUEST_COUNTS_ATTR, {})
    counts[name] = counts.get(name, 0) + amount


def _api_counts(status_code: int, extra: Mapping[str, int] | None) -> dict[str, int]:
    counts = {"api_requests": 1, **(extra or {})}
    if status_code >= 500:
        counts["api_errors"] = 1
    return counts


async def aobserve_api_latency(latency_ms: float, status_code: int, extra: Mapping[str, int] | None = None) -> None:
    await arecord(_api_counts(status_code, extra), {"api_latency_ms": latency_ms})


def _record(counts: Mapping[str, int], observations: Mapping[str, float], now: float | None = None) -> None:
    try:
        pipe = get_redis().pipeline(transaction=False)
        _fill(pipe, counts, observations, now)
        pipe.execute()
    except redis.RedisError:
        logger.warning("metrics unavailable", extra={"event": "metrics_unavailable"})


def incr(name: str, amount: int = 1, *, now: float | None = None) -> None:
    _record({name: amount}, {}, now)


def observe(name: str, value_ms: float, *, now: float | None = None) -> None:
    _record({}, {name: value_ms}, now)


def observe_api_latency(latency_ms: float, status_code: int, *, now: float | None = None,
                        extra: Mapping[str, int] | None = None) -> None:
    _record(_api_counts(status_code, extra), {"api_latency_ms": latency_ms}, now)


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


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _summarise(count: Callable[[str], int], values: Callable[[str], list[float]]) -> dict[str, float | int | None]:
    hits, misses = count("price_cache_hit"), count("price_cache_miss")
    requests, errors = count("api_requests"), count("api_errors")
    succeeded, failed = count("execution_success"), count("execution_failure")
    api = values("api_latency_ms")
    detection = values("detection_latency_ms")
    ws = values("ws_event_latency_ms")
    return {
        "api_requests": requests,
        "api_errors": errors,
        "api_error_rate": _ratio(errors, requests),
        "api_latency_samples": len(api),
        "api_latency_p50_ms": percentile(api, 50),
        "api_latency_p95_ms": percentile(api, 95),
        "price_cache_hits": hits,
        "price_cache_misses": misses,
        "price_cache_hit_ratio": _ratio(hits, hits + misses),
        "executions_succeeded": succeeded,
        "executions_failed": failed,
        "execution_success_rate": _ratio(succeeded, succeeded + failed),
        "detection_latency_samples": len(detection),
        "detection_latency_p99_ms": percentile(detection, 99),
        "ws_event_latency_samples": len(ws),
        "ws_event_latency_p99_ms": percentile(ws, 99),
    }


def snapshot() -> dict[str, float | int | None]:
    """The figures the SPEC's acceptance list names, over the process lifetime (samples: the last 2000)."""
    return _summarise(counter, samples)


def window_snapshot(window_seconds: float, now: float | None = None) -> dict[str, float | int | None]:
    """The same figures over the last `window_seconds` (rounded up to whole minutes), read in one round-trip."""
    at = time.time() if now is None else now
    buckets = [str(b) for b in range(_bucket(at - window_seconds), _bucket(at) + 1)]
    pipe = get_redis().pipeline(transaction=False)
    for name in COUNTERS:
        pipe.mget([key("metrics", "wcount", name, b) for b in buckets])
    for name in LATENCY_METRICS:
        for b in buckets:
            pipe.lrange(key("metrics", "wsamples", name, b), 0, -1)
    replies = iter(pipe.execute())
    counts = {name: sum(int(v) for v in next(replies) if v) for name in COUNTERS}
    values: dict[str, list[float]] = {}
    for name in LATENCY_METRICS:
        values[name] = [float(v) for _ in buckets for v in next(replies)]
    summary = _summarise(counts.__getitem__, values.__getitem__)
    return {"window_seconds": window_seconds, **summary}


def prometheus_text() -> str:
    lines = []
    for name, value in snapshot().items():
        metric = f"arbsite_{name}"
        lines.append(f"# TYPE {metric} gauge")
        lines.append(f"{metric} {'NaN' if value is None else value}")
    return "\n".join(lines) + "\n"

"""Performance monitor: the SPEC's acceptance figures as alert thresholds over a recent window.

`evaluate(snapshot)` is pure: which metrics are past their threshold. `check_performance()`
(the beat task `arbsite.check_performance`, every 30 s) reads the windowed snapshot, raises
one `engine_alert` per breach episode (the open episode is a Redis key, so several workers
or a restart never repeat it), reports the recovery as an info alert, and writes one
performance line on `arbsite.perf`. A metric with too few samples in the window is not
judged: an open episode stays open until a clear reading closes it.

Imports point one way (`trading` -> `exchanges` -> `arbsite`), so the monitor publishes
through `arbsite.events` itself; the trading alert store can keep a record by registering
a sink with `register_alert_sink`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from arbsite import events, metrics
from arbsite.redis_client import get_redis, key

perf_logger = logging.getLogger("arbsite.perf")
logger = logging.getLogger("arbsite.monitor")

DEGRADED = "PERFORMANCE_DEGRADED"
RECOVERED = "PERFORMANCE_RECOVERED"

Snapshot = Mapping[str, float | int | None]
Unit = Literal["ms", "ratio"]


@dataclass(frozen=True)
class Threshold:
    """One acceptance figure: the metric must stay strictly below (or above) `limit`."""

    metric: str  # key in the snapshot (and `arbsite_<metric>` in /metrics)
    label: str
    limit: float
    must_be: Literal["below", "above"]
    unit: Unit
    count_key: str  # snapshot key counting what the figure is computed from
    min_count: int

    def breached_by(self, value: float) -> bool:
        # The SPEC's figures are strict ("P95 < 200 ms", "success rate > 99 %"): the limit itself is a breach.
        return value >= self.limit if self.must_be == "below" else value <= self.limit

    def describe(self, value: float) -> str:
        sign = "<" if self.must_be == "below" else ">"
        return f"{self.label} {_fmt(value, self.unit)} (threshold {sign} {_fmt(self.limit, self.unit)})"


def _fmt(value: float, unit: Unit) -> str:
    return f"{value:.0f} ms" if unit == "ms" and value >= 10 else (
        f"{value:.1f} ms" if unit == "ms" else f"{value * 100:.2f} %"
    )


@dataclass(frozen=True)
class Reading:
    """A threshold applied to one snapshot."""

    threshold: Threshold
    value: float | None
    count: int

    @property
    def sufficient(self) -> bool:
        return self.value is not None and self.count >= self.threshold.min_count

    @property
    def breached(self) -> bool:
        return self.sufficient and self.value is not None and self.threshold.breached_by(self.value)


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float
    limit: float
    must_be: str
    unit: Unit
    message: str


def _percent_setting(name: str, default: float) -> float:
    value = float(getattr(settings, name, default))
    if not 0 <= value <= 100:
        raise ValueError(f"{name} must be a percentage between 0 and 100, not {value}")
    return value / 100


def thresholds() -> tuple[Threshold, ...]:
    """The SPEC section 9 figures, each overridable by a setting."""
    min_samples = int(getattr(settings, "PERF_MIN_SAMPLES", 20))
    min_executions = int(getattr(settings, "PERF_MIN_EXECUTIONS", 5))
    return (
        Threshold("api_latency_p95_ms", "API latency P95", float(getattr(settings, "PERF_API_P95_MS", 200.0)),
                  "below", "ms", "api_latency_samples", min_samples),
        Threshold("detection_latency_p99_ms", "Engine detection latency P99",
                  float(getattr(settings, "PERF_DETECTION_P99_MS", 100.0)),
                  "below", "ms", "detection_latency_samples", min_samples),
        Threshold("ws_event_latency_p99_ms", "Websocket event latency P99",
                  float(getattr(settings, "PERF_WS_EVENT_P99_MS", 100.0)),
                  "below", "ms", "ws_event_latency_samples", min_samples),
        Threshold("api_error_rate", "API error rate", _percent_setting("PERF_MAX_ERROR_RATE_PERCENT", 1.0),
                  "below", "ratio", "api_requests", min_samples),
        Threshold("execution_success_rate", "Execution success rate",
                  _percent_setting("PERF_MIN_SUCCESS_RATE_PERCENT", 99.0),
                  "above", "ratio", "_executions", min_executions),
        Threshold("price_cache_hit_ratio", "Price cache hit ratio",
                  _percent_setting("PERF_MIN_CACHE_HIT_PERCENT", 80.0),
                  "above", "ratio", "_cache_lookups", min_samples),
    )


def _count(snapshot: Snapshot, count_key: str) -> int:
    derived = {
        "_executions": ("executions_succeeded", "executions_failed"),
        "_cache_lookups": ("price_cache_hits", "price_cache_misses"),
    }
    names = derived.get(count_key, (count_key,))
    return sum(int(snapshot.get(name) or 0) for name in names)


def assess(snapshot: Snapshot, limits: tuple[Threshold, ...] | None = None) -> list[Reading]:
    """Every threshold applied to the snapshot, judged or not."""
    out = []
    for threshold in limits if limits is not None else thresholds():
        raw = snapshot.get(threshold.metric)
        out.append(Reading(threshold, None if raw is None else float(raw), _count(snapshot, threshold.count_key)))
    return out


def evaluate(snapshot: Snapshot, limits: tuple[Threshold, ...] | None = None) -> list[Breach]:
    """The metrics past their threshold (those with enough samples to judge)."""
    return [
        Breach(r.threshold.metric, r.value, r.threshold.limit, r.threshold.must_be, r.threshold.unit,
               r.threshold.describe(r.value))
        for r in assess(snapshot, limits)
        if r.breached and r.value is not None
    ]


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class PerformanceAlert:
    """What a sink receives: the `engine_alert` payload, before it is published."""

    severity: Literal["info", "warning"]
    code: str
    message: str
    metric: str
    value: float
    limit: float

    def payload(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "metric": self.metric,
                "value": self.value, "threshold": self.limit, "ts": events.now_ms()}


AlertSink = Callable[[PerformanceAlert], None]
_sinks: list[AlertSink] = []


def register_alert_sink(sink: AlertSink) -> None:
    """Also hand every performance alert to `sink` (e.g. the trading alert store); idempotent."""
    if sink not in _sinks:
        _sinks.append(sink)


def unregister_alert_sink(sink: AlertSink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def _raise(alert: PerformanceAlert, reading: Reading) -> None:
    unit = reading.threshold.unit
    log = perf_logger.warning if alert.severity == "warning" else perf_logger.info
    log(alert.message, extra={
        "event": "engine_alert",
        "success": alert.severity != "warning",
        "error_code": alert.code,
        "latency_ms": alert.value if unit == "ms" else None,
        "detail": {"metric": alert.metric, "value": alert.value, "threshold": alert.limit,
                   "severity": alert.severity, "samples": reading.count},
    })
    events.publish("engine_alert", alert.payload())  # type: ignore[arg-type]
    for sink in list(_sinks):
        try:
            sink(alert)
        except Exception:
            logger.exception("performance alert sink failed", extra={"event": "alert_sink_failed"})


def _episode_key(metric: str) -> str:
    return key("monitor", "breach", metric)


def open_episodes() -> set[str]:
    """Metrics whose breach has been alerted and has not recovered yet."""
    client = get_redis()
    names = [r.threshold.metric for r in assess({})]
    flags = client.mget([_episode_key(name) for name in names])
    return {name for name, flag in zip(names, flags, strict=True) if flag}


def window_seconds() -> float:
    return float(getattr(settings, "PERF_WINDOW_SECONDS", 300.0))


@dataclass(frozen=True)
class CheckResult:
    snapshot: dict[str, float | int | None]
    readings: list[Reading]
    raised: list[str]  # metrics that opened an episode in this check
    recovered: list[str]


def check_performance(now: float | None = None) -> CheckResult:
    """Judge the recent window, alert once per breach episode, report recoveries, log the summary."""
    snap = metrics.window_snapshot(window_seconds(), now)
    readings = assess(snap)
    client = get_redis()
    raised: list[str] = []
    recovered: list[str] = []
    for reading in readings:
        threshold, episode = reading.threshold, _episode_key(reading.threshold.metric)
        if reading.breached and reading.value is not None:
            record = json.dumps({"since": time.time() if now is None else now, "value": reading.value})
            if client.set(episode, record, nx=True):  # only the first check of an episode alerts
                raised.append(threshold.metric)
                _raise(PerformanceAlert("warning", DEGRADED, threshold.describe(reading.value), threshold.metric,
                                        reading.value, threshold.limit), reading)
        elif reading.sufficient and reading.value is not None and client.delete(episode):
            recovered.append(threshold.metric)
            _raise(PerformanceAlert("info", RECOVERED, f"recovered: {threshold.describe(reading.value)}",
                                    threshold.metric, reading.value, threshold.limit), reading)
    breached = [r.threshold.metric for r in readings if r.breached]
    perf_logger.info(
        "performance check: %s", "degraded: " + ", ".join(breached) if breached else "ok",
        extra={"event": "performance_check", "success": not breached,
               "detail": {"window_seconds": snap.get("window_seconds"), "breached": breached,
                          "raised": raised, "recovered": recovered,
                          "values": {r.threshold.metric: r.value for r in readings}}},
    )
    return CheckResult(snap, readings, raised, recovered)


def report(now: float | None = None) -> dict[str, Any]:
    """What `GET /api/monitoring/performance` returns: windowed figures, thresholds, breach flags."""
    snap = metrics.window_snapshot(window_seconds(), now)
    readings = assess(snap)
    alerting = open_episodes()
    figures = {
        r.threshold.metric: {
            "label": r.threshold.label,
            "value": r.value,
            "threshold": r.threshold.limit,
            "mustBe": r.threshold.must_be,
            "unit": r.threshold.unit,
            "samples": r.count,
            "minSamples": r.threshold.min_count,
            "sufficient": r.sufficient,
            "breached": r.breached,
            "alerting": r.threshold.metric in alerting,
        }
        for r in readings
    }
    breaches = [name for name, figure in figures.items() if figure["breached"]]
    judged = any(figure["sufficient"] for figure in figures.values())
    return {
        "status": "degraded" if breaches else ("ok" if judged else "no_data"),
        "windowSeconds": window_seconds(),
        "metrics": figures,
        "breaches": breaches,
        "window": snap,
        "totals": metrics.snapshot(),
        "ts": events.now_ms(),
    }

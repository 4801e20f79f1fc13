"""The beat check: windowed figures, one alert per breach episode, recoveries, sinks, the perf log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arbsite import metrics, monitor, tasks

T0 = 1_800_000_000.0  # a whole minute, so bucket arithmetic is easy to follow


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stub for `events.publish` (the channel layer is tested in tests/arbsite): records engine alerts."""
    sent: list[dict[str, Any]] = []

    def publish_stub(event: str, data: dict[str, Any]) -> bool:
        assert event == "engine_alert"
        sent.append(dict(data))
        return True

    monkeypatch.setattr("arbsite.events.publish", publish_stub)
    return sent


def api_requests(n: int, latency_ms: float, at: float, status: int = 200) -> None:
    for _ in range(n):
        metrics.observe_api_latency(latency_ms, status, now=at)


def test_it_alerts_once_per_breach_episode(published: list[dict[str, Any]]) -> None:
    api_requests(30, 350.0, T0)

    first = monitor.check_performance(now=T0)
    assert first.raised == ["api_latency_p95_ms"]
    (alert,) = published
    assert alert["severity"] == "warning" and alert["code"] == "PERFORMANCE_DEGRADED"
    assert alert["message"] == "API latency P95 350 ms (threshold < 200 ms)"
    assert alert["metric"] == "api_latency_p95_ms" and alert["value"] == 350.0 and alert["threshold"] == 200.0

    again = monitor.check_performance(now=T0 + 30)
    assert again.raised == [] and len(published) == 1
    assert monitor.open_episodes() == {"api_latency_p95_ms"}


def test_a_recovery_is_published_as_info_and_a_new_episode_alerts_again(published: list[dict[str, Any]]) -> None:
    api_requests(30, 350.0, T0)
    monitor.check_performance(now=T0)

    api_requests(30, 40.0, T0 + 600)  # the slow minute has left the 5-minute window
    result = monitor.check_performance(now=T0 + 600)
    assert result.recovered == ["api_latency_p95_ms"]
    assert published[-1]["severity"] == "info" and published[-1]["code"] == "PERFORMANCE_RECOVERED"
    assert published[-1]["message"] == "recovered: API latency P95 40 ms (threshold < 200 ms)"
    assert monitor.open_episodes() == set()

    assert monitor.check_performance(now=T0 + 630).recovered == []
    assert len(published) == 2

    api_requests(30, 500.0, T0 + 1200)
    assert monitor.check_performance(now=T0 + 1200).raised == ["api_latency_p95_ms"]
    assert [a["code"] for a in published] == ["PERFORMANCE_DEGRADED", "PERFORMANCE_RECOVERED", "PERFORMANCE_DEGRADED"]


def test_too_few_samples_neither_alert_nor_end_an_episode(published: list[dict[str, Any]]) -> None:
    api_requests(5, 900.0, T0)
    assert monitor.check_performance(now=T0).raised == []

    api_requests(30, 900.0, T0 + 60)
    monitor.check_performance(now=T0 + 60)
    api_requests(3, 10.0, T0 + 900)  # quiet: three fast requests say nothing yet
    assert monitor.check_performance(now=T0 + 900).recovered == []
    assert monitor.open_episodes() == {"api_latency_p95_ms"}
    assert len(published) == 1


def test_the_window_forgets_old_samples_but_the_totals_do_not(published: list[dict[str, Any]]) -> None:
    api_requests(30, 350.0, T0)
    later = metrics.window_snapshot(300, now=T0 + 420)
    assert later["api_latency_samples"] == 0 and later["api_latency_p95_ms"] is None
    assert metrics.window_snapshot(300, now=T0 + 240)["api_latency_samples"] == 30
    assert metrics.snapshot()["api_latency_samples"] == 30
    assert monitor.check_performance(now=T0 + 420).raised == []


def test_it_judges_error_rate_cache_hits_and_execution_success(published: list[dict[str, Any]]) -> None:
    api_requests(97, 20.0, T0)
    api_requests(3, 20.0, T0, status=503)
    api_requests(5, 20.0, T0, status=404)  # client errors are not server errors
    metrics.incr("price_cache_hit", 70, now=T0)
    metrics.incr("price_cache_miss", 30, now=T0)
    metrics.incr("execution_success", 9, now=T0)
    metrics.incr("execution_failure", 1, now=T0)

    result = monitor.check_performance(now=T0)

    assert sorted(result.raised) == ["api_error_rate", "execution_success_rate", "price_cache_hit_ratio"]
    assert result.snapshot["api_error_rate"] == pytest.approx(3 / 105)
    assert result.snapshot["price_cache_hit_ratio"] == pytest.approx(0.7)
    assert result.snapshot["execution_success_rate"] == pytest.approx(0.9)
    messages = sorted(a["message"] for a in published)
    assert messages == [
        "API error rate 2.86 % (threshold < 1.00 %)",
        "Execution success rate 90.00 % (threshold > 99.00 %)",
        "Price cache hit ratio 70.00 % (threshold > 80.00 %)",
    ]


def test_latency_figures_come_from_detection_and_websocket_samples(published: list[dict[str, Any]]) -> None:
    for _ in range(25):
        metrics.observe("detection_latency_ms", 150.0, now=T0)
        metrics.observe("ws_event_latency_ms", 30.0, now=T0)
    assert monitor.check_performance(now=T0).raised == ["detection_latency_p99_ms"]


@pytest.fixture
def sink_calls() -> Iterator[list[monitor.PerformanceAlert]]:
    calls: list[monitor.PerformanceAlert] = []

    def recording_sink(alert: monitor.PerformanceAlert) -> None:
        calls.append(alert)

    def broken_sink(alert: monitor.PerformanceAlert) -> None:
        raise RuntimeError("store down")

    monitor.register_alert_sink(broken_sink)
    monitor.register_alert_sink(recording_sink)
    monitor.register_alert_sink(recording_sink)  # idempotent
    yield calls
    monitor.unregister_alert_sink(broken_sink)
    monitor.unregister_alert_sink(recording_sink)


def test_registered_sinks_get_every_alert_even_after_a_failing_one(
    published: list[dict[str, Any]], sink_calls: list[monitor.PerformanceAlert], caplog: pytest.LogCaptureFixture
) -> None:
    api_requests(30, 350.0, T0)
    monitor.check_performance(now=T0)
    api_requests(30, 10.0, T0 + 600)
    monitor.check_performance(now=T0 + 600)

    assert [(a.severity, a.code, a.metric) for a in sink_calls] == [
        ("warning", "PERFORMANCE_DEGRADED", "api_latency_p95_ms"),
        ("info", "PERFORMANCE_RECOVERED", "api_latency_p95_ms"),
    ]
    assert len(published) == 2
    assert [r for r in caplog.records if getattr(r, "event", None) == "alert_sink_failed"]


def test_it_writes_one_performance_line_and_alerts_on_the_perf_logger(
    published: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api_requests(30, 350.0, T0)
    monitor.check_performance(now=T0)

    perf = [r for r in caplog.records if r.name == "arbsite.perf"]
    (summary,) = [r for r in perf if getattr(r, "event", None) == "performance_check"]
    assert summary.levelno == logging.INFO and summary.success is False  # type: ignore[attr-defined]
    assert summary.detail["breached"] == ["api_latency_p95_ms"]  # type: ignore[attr-defined]
    (alert,) = [r for r in perf if getattr(r, "event", None) == "engine_alert"]
    assert alert.levelno == logging.WARNING
    assert alert.error_code == "PERFORMANCE_DEGRADED" and alert.latency_ms == 350.0  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_beat_task_returns_the_breaches(published: list[dict[str, Any]]) -> None:
    import time

    api_requests(30, 350.0, time.time())
    assert tasks.check_performance() == ["api_latency_p95_ms"]
    assert tasks.check_performance.name == "arbsite.check_performance"


def test_the_beat_task_skips_quietly_without_redis(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def redis_down_stub(now: float | None = None) -> monitor.CheckResult:
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(monitor, "check_performance", redis_down_stub)
    assert tasks.check_performance() == []
    assert [r for r in caplog.records if getattr(r, "event", None) == "performance_check_skipped"]

"""`monitor.evaluate` is pure: the SPEC's figures as strict limits, judged only with enough samples."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from arbsite import monitor


def healthy(**changes: Any) -> dict[str, Any]:
    """A window that meets every figure, with plenty of samples."""
    snap: dict[str, Any] = {
        "api_requests": 1000, "api_errors": 0, "api_error_rate": 0.0,
        "api_latency_samples": 1000, "api_latency_p95_ms": 50.0,
        "price_cache_hits": 900, "price_cache_misses": 100, "price_cache_hit_ratio": 0.9,
        "executions_succeeded": 100, "executions_failed": 0, "execution_success_rate": 1.0,
        "detection_latency_samples": 500, "detection_latency_p99_ms": 5.0,
        "ws_event_latency_samples": 500, "ws_event_latency_p99_ms": 20.0,
    }
    snap.update(changes)
    return snap


def breached(snap: dict[str, Any]) -> list[str]:
    return [b.metric for b in monitor.evaluate(snap)]


def test_it_finds_nothing_in_a_healthy_window() -> None:
    assert breached(healthy()) == []


@pytest.mark.parametrize(
    ("metric", "ok", "at_limit", "bad"),
    [
        ("api_latency_p95_ms", 199.9, 200.0, 350.0),
        ("detection_latency_p99_ms", 99.9, 100.0, 180.0),
        ("ws_event_latency_p99_ms", 99.9, 100.0, 250.0),
        ("api_error_rate", 0.0099, 0.01, 0.05),
        ("execution_success_rate", 0.991, 0.99, 0.5),
        ("price_cache_hit_ratio", 0.801, 0.80, 0.3),
    ],
)
def test_it_treats_each_figure_as_a_strict_limit(metric: str, ok: float, at_limit: float, bad: float) -> None:
    assert breached(healthy(**{metric: ok})) == []
    assert breached(healthy(**{metric: at_limit})) == [metric]
    assert breached(healthy(**{metric: bad})) == [metric]


def test_exact_ratios_at_the_limit_are_breaches() -> None:
    # 99 of 100 executions is not "> 99 %"; 1 error in 100 is not "< 1 %"; 80 % hits is not "> 80 %".
    snap = healthy(executions_succeeded=99, executions_failed=1, execution_success_rate=99 / 100,
                   api_requests=100, api_errors=1, api_error_rate=1 / 100,
                   price_cache_hits=80, price_cache_misses=20, price_cache_hit_ratio=80 / 100)
    assert sorted(breached(snap)) == ["api_error_rate", "execution_success_rate", "price_cache_hit_ratio"]


def test_it_does_not_judge_a_figure_with_too_few_samples() -> None:
    snap = healthy(api_latency_samples=19, api_latency_p95_ms=900.0,
                   api_requests=19, api_errors=5, api_error_rate=5 / 19,
                   executions_succeeded=2, executions_failed=2, execution_success_rate=0.5,
                   price_cache_hits=1, price_cache_misses=3, price_cache_hit_ratio=0.25)
    assert breached(snap) == []
    readings = {r.threshold.metric: r for r in monitor.assess(snap)}
    assert not readings["api_latency_p95_ms"].sufficient
    assert readings["detection_latency_p99_ms"].sufficient


def test_it_does_not_judge_a_figure_with_no_value() -> None:
    snap = healthy(ws_event_latency_p99_ms=None, ws_event_latency_samples=0)
    assert breached(snap) == []


def test_the_breach_names_the_metric_value_and_threshold() -> None:
    (breach,) = monitor.evaluate(healthy(api_latency_p95_ms=350.0))
    assert breach.value == 350.0 and breach.limit == 200.0 and breach.must_be == "below"
    assert breach.message == "API latency P95 350 ms (threshold < 200 ms)"
    (ratio,) = monitor.evaluate(healthy(price_cache_hit_ratio=0.5))
    assert ratio.message == "Price cache hit ratio 50.00 % (threshold > 80.00 %)"


@override_settings(PERF_API_P95_MS=500.0, PERF_MIN_CACHE_HIT_PERCENT=95.0, PERF_MIN_SAMPLES=1000)
def test_settings_override_the_figures() -> None:
    snap = healthy(api_latency_p95_ms=350.0, price_cache_hit_ratio=0.9)
    assert breached(snap) == ["price_cache_hit_ratio"]
    assert breached(healthy(price_cache_hits=900, price_cache_misses=99)) == []  # 999 lookups < 1000


@override_settings(PERF_MIN_SUCCESS_RATE_PERCENT=150)
def test_a_percentage_outside_0_100_fails_loudly() -> None:
    with pytest.raises(ValueError, match="PERF_MIN_SUCCESS_RATE_PERCENT"):
        monitor.thresholds()

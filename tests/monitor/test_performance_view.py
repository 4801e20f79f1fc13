"""`GET /api/monitoring/performance`: enveloped, authenticated, figures with thresholds and breach flags."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from arbsite import metrics, monitor

pytestmark = pytest.mark.django_db

URL = "/api/monitoring/performance"


def data_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"success", "data"} and body["success"] is True
    return body["data"]


def test_it_requires_authentication(anon: APIClient) -> None:
    response = anon.get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"


def test_it_says_no_data_on_a_quiet_desk(api: APIClient) -> None:
    data = data_of(api.get(URL))
    assert data["status"] == "no_data" and data["breaches"] == []
    assert data["windowSeconds"] == 300.0
    assert set(data["metrics"]) == {t.metric for t in monitor.thresholds()}
    figure = data["metrics"]["api_latency_p95_ms"]
    assert figure == {
        "label": "API latency P95", "value": None, "threshold": 200.0, "mustBe": "below", "unit": "ms",
        "samples": 0, "minSamples": 20, "sufficient": False, "breached": False, "alerting": False,
    }


def test_it_flags_breaches_and_open_alerts(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("arbsite.events.publish", lambda event, data: True)  # stub: no channel layer needed
    now = time.time()
    for _ in range(30):
        metrics.observe_api_latency(350.0, 200, now=now)
    metrics.incr("price_cache_hit", 95, now=now)
    metrics.incr("price_cache_miss", 5, now=now)

    data = data_of(api.get(URL))
    assert data["status"] == "degraded" and data["breaches"] == ["api_latency_p95_ms"]
    latency = data["metrics"]["api_latency_p95_ms"]
    assert latency["value"] == 350.0 and latency["breached"] is True and latency["alerting"] is False
    cache = data["metrics"]["price_cache_hit_ratio"]
    assert cache["value"] == 0.95 and cache["threshold"] == 0.8 and cache["mustBe"] == "above"
    assert cache["breached"] is False and cache["sufficient"] is True
    assert data["totals"]["api_requests"] == 30 and data["window"]["api_latency_samples"] == 30

    monitor.check_performance()
    assert data_of(api.get(URL + "/"))["metrics"]["api_latency_p95_ms"]["alerting"] is True


def test_it_answers_503_when_metrics_are_unavailable(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def redis_down_stub(now: float | None = None) -> dict[str, Any]:
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(monitor, "report", redis_down_stub)
    response = api.get(URL)
    assert response.status_code == 503
    assert response.json() == {
        "success": False,
        "error": {"code": "INTERNAL_ERROR", "message": "Metrics are unavailable: Redis cannot be reached."},
    }

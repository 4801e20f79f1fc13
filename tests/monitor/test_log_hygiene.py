"""SPEC 2.5: errors and writes are logged, successful GETs are not, slow requests are performance events."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from arbsite.logging import JsonFormatter
from arbsite.urls import urlpatterns as site_urlpatterns

pytestmark = pytest.mark.django_db


@csrf_exempt
def echo(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"success": True}, status=201 if request.method == "POST" else 200)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("unexpected")


urlpatterns = [path("api/test-echo", echo), path("api/test-boom", boom), *site_urlpatterns]


def handler500(request: HttpRequest) -> HttpResponse:
    from arbsite.urls import handler500 as site_handler500

    return site_handler500(request)


@pytest.fixture
def client(operator: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    return client


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def request_lines(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.name == "arbsite.http"]


def perf_lines(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.name == "arbsite.perf"]


def as_json(record: logging.LogRecord) -> dict[str, Any]:
    return json.loads(JsonFormatter().format(record))


@pytest.mark.urls(__name__)
def test_a_successful_get_is_not_logged(client: Client, logs: pytest.LogCaptureFixture) -> None:
    assert client.get("/api/test-echo").status_code == 200
    assert client.get("/api/monitoring/performance").status_code == 200
    assert client.get("/health").status_code in (200, 503)
    assert request_lines(logs) == [] and perf_lines(logs) == []


@pytest.mark.urls(__name__)
def test_a_404_is_a_warning(client: Client, logs: pytest.LogCaptureFixture) -> None:
    assert client.get("/api/no/such/thing").status_code == 404
    (line,) = request_lines(logs)
    assert line.levelno == logging.WARNING
    assert as_json(line) | {"ts": None, "latency_ms": None} == {
        "ts": None, "level": "WARNING", "logger": "arbsite.http", "message": "GET /api/no/such/thing -> 404",
        "event": "http_request", "latency_ms": None, "path": "/api/no/such/thing", "method": "GET",
        "status": 404, "user": "olivia", "success": False, "error_code": "NOT_FOUND",
    }
    assert isinstance(as_json(line)["latency_ms"], float)


@pytest.mark.urls(__name__)
def test_a_500_is_an_error(client: Client, logs: pytest.LogCaptureFixture) -> None:
    assert client.get("/api/test-boom").status_code == 500
    (line,) = request_lines(logs)
    assert line.levelno == logging.ERROR
    assert as_json(line)["status"] == 500 and as_json(line)["event"] == "http_request"


@pytest.mark.urls(__name__)
def test_a_write_is_logged_as_a_business_line(client: Client, logs: pytest.LogCaptureFixture) -> None:
    assert client.post("/api/test-echo", data={}).status_code == 201
    (line,) = request_lines(logs)
    assert line.levelno == logging.INFO
    assert as_json(line)["method"] == "POST" and as_json(line)["status"] == 201


@pytest.mark.urls(__name__)
def test_a_slow_request_is_a_performance_event_not_an_error(
    client: Client, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("arbsite.logging.SLOW_REQUEST_MS", 0.0)  # every request counts as slow
    assert client.get("/api/test-echo").status_code == 200
    assert request_lines(logs) == []
    (line,) = perf_lines(logs)
    assert line.levelno == logging.INFO
    fields = as_json(line)
    assert fields["event"] == "slow_request" and fields["logger"] == "arbsite.perf"
    assert fields["path"] == "/api/test-echo" and "latency_ms" in fields
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]


def test_json_lines_carry_the_spec_fields() -> None:
    record = logging.LogRecord("trading.execution", logging.WARNING, __file__, 1, "leg failed", None, None)
    fields = {"event": "order_failed", "exchange": "binance", "pairId": "bybit_binance_btc", "symbol": "BTCUSDT",
              "latency_ms": 12.5, "success": False, "error_code": "UPSTREAM_ERROR"}
    for name, value in fields.items():
        setattr(record, name, value)
    line = as_json(record)
    assert {name: line[name] for name in fields} == fields
    assert line["level"] == "WARNING" and line["logger"] == "trading.execution" and line["message"] == "leg failed"


def test_the_performance_alert_line_carries_the_spec_fields(
    logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbsite import metrics, monitor

    monkeypatch.setattr("arbsite.events.publish", lambda event, data: True)  # stub: no channel layer needed
    for _ in range(25):
        metrics.observe("ws_event_latency_ms", 240.0, now=1_800_000_000.0)
    monitor.check_performance(now=1_800_000_000.0)
    (alert,) = [as_json(r) for r in perf_lines(logs) if getattr(r, "event", None) == "engine_alert"]
    assert alert["event"] == "engine_alert" and alert["success"] is False
    assert alert["error_code"] == "PERFORMANCE_DEGRADED" and alert["latency_ms"] == 240.0
    assert alert["detail"]["metric"] == "ws_event_latency_p99_ms" and alert["detail"]["threshold"] == 100.0


def test_framework_request_noise_is_silenced() -> None:
    # Successful requests reach the log only through our middleware, which drops GETs.
    assert logging.getLogger("django.server").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("daphne").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("django.request").getEffectiveLevel() >= logging.ERROR

"""The `/api` envelope on every error class, the session login flow, `/health` and `/metrics`."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from arbsite import health, metrics
from arbsite.redis_client import get_redis, key

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # the conftest operator's


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False, body
    assert set(body) == {"success", "error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# -- a throwaway URLconf for the unexpected-exception cases -------------------


class BoomView(APIView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internals: password=hunter2 at line 42")


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("outside DRF")


urlpatterns = [path("api/boom", BoomView.as_view()), path("api/plain-boom", plain_boom)]


def handler500(request: HttpRequest) -> HttpResponse:
    from arbsite.urls import handler500 as site_handler500

    return site_handler500(request)


# -- error envelopes ----------------------------------------------------------


def test_it_reports_validation_errors_with_fields(anon: APIClient) -> None:
    response = anon.post("/api/auth/login", {"username": ""}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "password" in error["message"]
    assert set(error["fields"]) == {"username", "password"}


def test_it_reports_malformed_json_as_validation_error(anon: APIClient) -> None:
    response = anon.post("/api/auth/login", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"


def test_it_requires_authentication(anon: APIClient) -> None:
    response = anon.get("/api/auth/me")
    # Session auth comes first, so DRF answers 403 (no WWW-Authenticate scheme to offer); the code says why.
    assert response.status_code in (401, 403)
    assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"


def test_it_rejects_a_wrong_token(anon: APIClient) -> None:
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon.get("/api/auth/me")
    assert response.status_code in (401, 403)
    assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"


def test_it_accepts_a_token(operator: Any, anon: APIClient) -> None:
    from rest_framework.authtoken.models import Token

    anon.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    response = anon.get("/api/auth/me")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"user": {"username": "olivia", "isStaff": False}}}


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths_are_enveloped_404s(api: APIClient, method: str) -> None:
    response = getattr(api, method)("/api/no/such/thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert error_of(response)["code"] == "NOT_FOUND"


def test_a_wrong_method_is_405(anon: APIClient) -> None:
    response = anon.get("/api/auth/login")
    assert response.status_code == 405
    assert error_of(response)["code"] == "METHOD_NOT_ALLOWED"


def test_login_is_throttled(anon: APIClient) -> None:
    for _ in range(10):
        response = anon.post("/api/auth/login", {"username": "olivia", "password": "wrong"}, format="json")
        assert response.status_code == 401
        assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"
    response = anon.post("/api/auth/login", {"username": "olivia", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert error_of(response)["code"] == "RATE_LIMITED"
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls(__name__)
def test_an_unexpected_error_in_a_view_is_a_generic_500(api: APIClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="arbsite.api")
    response = api.get("/api/boom")
    assert response.status_code == 500
    error = error_of(response)
    assert error == {"code": "INTERNAL_ERROR", "message": "Internal error; it has been logged."}
    text = response.content.decode()
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text
    logged = [r for r in caplog.records if getattr(r, "event", None) == "api_unhandled_error"]
    assert len(logged) == 1 and logged[0].exc_info is not None


@pytest.mark.urls(__name__)
def test_an_error_outside_drf_is_a_generic_500_too(operator: Any) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.get("/api/plain-boom")
    assert response.status_code == 500
    assert error_of(response) == {"code": "INTERNAL_ERROR", "message": "Internal error; it has been logged."}


# -- login / me / logout with CSRF enforced ------------------------------------


def test_the_browser_login_flow_enforces_csrf(operator: Any) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    credentials = {"username": "olivia", "password": PASSWORD}

    response = browser.post("/api/auth/login", credentials, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "PERMISSION_DENIED"  # login CSRF refused

    response = browser.get("/api/auth/csrf")
    assert response.status_code == 200
    token = response.json()["data"]["csrfToken"]
    assert browser.cookies[settings.CSRF_COOKIE_NAME].value

    response = browser.post(
        "/api/auth/login", {**credentials, "password": "wrong"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 401
    assert error_of(response) == {"code": "AUTHENTICATION_REQUIRED", "message": "Wrong username or password."}

    response = browser.post("/api/auth/login", credentials, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["user"] == {"username": "olivia", "isStaff": False}
    token = body["data"]["csrfToken"]  # rotated at login
    assert settings.SESSION_COOKIE_NAME in browser.cookies

    response = browser.get("/api/auth/me")
    assert response.json() == {"success": True, "data": {"user": {"username": "olivia", "isStaff": False}}}

    response = browser.post("/api/auth/logout")
    assert response.status_code == 403
    assert error_of(response)["code"] == "PERMISSION_DENIED"
    assert "CSRF" in error_of(response)["message"]

    response = browser.post("/api/auth/logout", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json() == {"success": True}

    response = browser.get("/api/auth/me")
    assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"


# -- /health and /metrics ------------------------------------------------------


def write_heartbeat(age_seconds: float) -> None:
    beat = {"ts": time.time() - age_seconds, "streams": {"binance:spot:BTCUSDT": "ok"}}
    get_redis().set(key(*health.HEARTBEAT_KEY_PARTS), json.dumps(beat))


def test_health_is_degraded_without_the_market_data_process(anon: APIClient) -> None:
    response = anon.get("/health")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["checks"]["database"]["ok"] is True
    assert data["checks"]["redis"]["ok"] is True
    assert data["checks"]["marketdata"]["ok"] is False
    assert data["status"] == "degraded"


def test_health_is_ok_with_a_fresh_heartbeat(anon: APIClient) -> None:
    write_heartbeat(age_seconds=0.5)
    data = anon.get("/health").json()["data"]
    assert data["status"] == "ok"
    assert data["checks"]["marketdata"]["streams"] == {"binance:spot:BTCUSDT": "ok"}


def test_health_is_degraded_with_a_stale_heartbeat(anon: APIClient) -> None:
    write_heartbeat(age_seconds=settings.MARKETDATA_STALE_SECONDS + 5)
    assert anon.get("/health").json()["data"]["status"] == "degraded"


def test_metrics_are_prometheus_text(api: APIClient, anon: APIClient) -> None:
    api.get("/api/auth/me")
    api.get("/api/no/such/thing")
    metrics.observe("ws_event_latency_ms", 12.5)
    response = anon.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = dict(
        line.split(" ", 1) for line in response.content.decode().splitlines() if line and not line.startswith("#")
    )
    assert int(lines["arbsite_api_requests"]) == 2
    assert float(lines["arbsite_api_latency_p95_ms"]) >= 0
    assert float(lines["arbsite_ws_event_latency_p99_ms"]) == 12.5
    assert lines["arbsite_price_cache_hit_ratio"] == "NaN"

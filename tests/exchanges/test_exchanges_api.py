"""Exchanges API: every supported exchange with connectivity, keys mode and stream health."""

from __future__ import annotations

import json
import time

import pytest

from arbsite.redis_client import get_redis, key
from exchanges.order_books import StreamState, StreamStatus, record_exchange_outcome, write_stream_status
from exchanges.status import has_trading_keys

pytestmark = pytest.mark.django_db


def beat() -> None:
    get_redis().set(key("marketdata", "heartbeat"), json.dumps({"ts": time.time(), "pid": 1, "streams": {}}))


def test_it_requires_authentication(anon) -> None:  # type: ignore[no-untyped-def]
    response = anon.get("/api/exchanges")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"


def test_it_lists_every_supported_exchange(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", "k-not-a-real-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "s-not-a-real-secret")
    data = api.get("/api/exchanges").json()["data"]
    assert [e["name"] for e in data] == ["binance", "bybit", "okx", "bitget"]
    by_name = {e["name"]: e for e in data}
    assert by_name["binance"]["publicOnly"] is False
    assert by_name["bybit"]["publicOnly"] is True
    for entry in data:
        assert {"name", "connected", "publicOnly", "venue", "reachable", "websocket", "lastUpdateAgeMs",
                "streams", "lastError"} <= set(entry)
        assert entry["connected"] is False and entry["reachable"] is None  # nothing tried yet
        assert entry["websocket"] == "idle"
        assert "k-not-a-real-key" not in json.dumps(entry)


def test_it_reports_streams_and_reachability(api) -> None:  # type: ignore[no-untyped-def]
    beat()
    now = int(time.time() * 1000)
    write_stream_status(StreamStatus("binance:spot:BTCUSDT", StreamState.LIVE, now - 50, now - 60))
    write_stream_status(StreamStatus("binance:spot:ETHUSDT", StreamState.STALE, now - 20000, now - 20000,
                                     "STREAM_STALE", "no update for 20.0s", 3))
    record_exchange_outcome("bybit", False, "rest", "EXCHANGE_UNAVAILABLE", "bybit cannot be reached")
    binance = api.get("/api/exchanges/binance").json()["data"]
    assert binance["connected"] is True and binance["reachable"] is True
    assert binance["websocket"] == "degraded"
    assert 0 <= binance["lastUpdateAgeMs"] < 20000
    streams = {s["instrument"]: s for s in binance["streams"]}
    assert streams["binance:spot:BTCUSDT"]["state"] == "live" and streams["binance:spot:BTCUSDT"]["error"] is None
    assert streams["binance:spot:ETHUSDT"]["error"]["code"] == "STREAM_STALE"
    assert streams["binance:spot:ETHUSDT"]["ageMs"] >= 20000
    bybit = api.get("/api/exchanges/BYBIT").json()["data"]
    assert bybit["reachable"] is False and bybit["connected"] is False
    assert bybit["lastError"]["code"] == "EXCHANGE_UNAVAILABLE"


def test_it_does_not_trust_states_left_by_a_stopped_market_data_process(api) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time() * 1000)
    write_stream_status(StreamStatus("binance:spot:BTCUSDT", StreamState.LIVE, now - 50, now - 60))
    binance = api.get("/api/exchanges/binance").json()["data"]  # no heartbeat at all
    assert binance["websocket"] == "down"
    assert binance["streams"][0]["error"]["code"] == "MARKETDATA_DOWN"


def test_it_says_not_found_for_an_unknown_exchange(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/exchanges/kraken")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_keys_come_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OKX_API_KEY", "  ")
    assert has_trading_keys("okx") is False
    monkeypatch.setenv("OKX_API_KEY", "abc")
    assert has_trading_keys("okx") is False  # a key alone cannot sign: secret and passphrase too
    monkeypatch.setenv("OKX_API_SECRET", "def")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "ghi")
    assert has_trading_keys("okx") is True

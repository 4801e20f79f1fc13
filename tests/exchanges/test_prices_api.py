"""Prices API: auth, validation, cache TTL (hit/miss + counters), REST fallback, errors, batch."""

from __future__ import annotations

import socket
import time
from typing import Any

import ccxt
import pytest

from arbsite import metrics
from exchanges import connectivity
from exchanges.order_books import OrderBook, read_book_raw, write_book
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.exchanges.stubs import MARKETS, FakeRestClient, fake_book

pytestmark = pytest.mark.django_db

BTC_SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
BTC_LINEAR = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)


def stored_book(instrument: Instrument, age_ms: int, bid: float = 68000.1, ask: float = 68000.2) -> None:
    received = int(time.time() * 1000) - age_ms
    book = OrderBook.from_ccxt(fake_book(bid, ask), instrument, MARKETS[instrument.unified], received_ts=received)
    write_book(book)


@pytest.fixture
def fake_rest(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every REST client the Prices API makes is a FakeRestClient; `config` shapes the next ones."""
    config: dict[str, Any] = {"error": None, "books": {}}
    FakeRestClient.instances.clear()

    def factory(exchange: Any, credentials: Any = None) -> FakeRestClient:
        return FakeRestClient(str(exchange), config["books"], config["error"])

    monkeypatch.setattr(connectivity, "async_client", factory)
    return config


def test_it_requires_authentication(anon) -> None:  # type: ignore[no-untyped-def]
    response = anon.get("/api/prices/binance/BTCUSDT")
    assert response.status_code in (401, 403)
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "AUTHENTICATION_REQUIRED"


def test_it_serves_a_fresh_book_from_the_cache(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    stored_book(BTC_SPOT, age_ms=100)
    hits, misses = metrics.counter("price_cache_hit"), metrics.counter("price_cache_miss")
    response = api.get("/api/prices/binance/BTCUSDT")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["bids"][0] == ["68000.1", "0.5"]
    assert data["asks"][0] == ["68000.2", "0.5"]
    assert data["exchange"] == "binance" and data["symbol"] == "BTCUSDT" and data["type"] == "spot"
    assert data["source"] == "stream"
    assert data["ageMs"] >= 100
    assert isinstance(data["ts"], int)
    assert metrics.counter("price_cache_hit") == hits + 1
    assert metrics.counter("price_cache_miss") == misses
    assert FakeRestClient.instances == []  # no REST call at all


def test_it_refetches_an_old_book_over_rest(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    stored_book(BTC_SPOT, age_ms=5000, bid=1.0, ask=2.0)
    fake_rest["books"]["BTC/USDT"] = fake_book(68010.5, 68010.6)
    misses = metrics.counter("price_cache_miss")
    response = api.get("/api/prices/binance/btc-usdt")
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["source"] == "rest"
    assert data["bids"][0] == ["68010.5", "0.5"]
    assert metrics.counter("price_cache_miss") == misses + 1
    assert read_book_raw(BTC_SPOT)["bids"][0] == ["68010.5", "0.5"]  # type: ignore[index]
    assert all(c.closed for c in FakeRestClient.instances)
    # Stored: the next request is a hit.
    hits = metrics.counter("price_cache_hit")
    api.get("/api/prices/binance/BTCUSDT")
    assert metrics.counter("price_cache_hit") == hits + 1


def test_it_serves_linear_books_by_type(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    stored_book(BTC_LINEAR, age_ms=10, bid=68001.5, ask=68001.6)
    data = api.get("/api/prices/bybit/BTCUSDT?type=linear").json()["data"]
    assert data["type"] == "linear"
    assert data["bids"][0][0] == "68001.5"


def test_it_rejects_an_unknown_exchange_listing_the_valid_ones(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/prices/kraken/BTCUSDT")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    for name in ("binance", "bybit", "okx", "bitget"):
        assert name in error["message"]


def test_it_rejects_an_unknown_type(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/prices/binance/BTCUSDT?type=inverse")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_it_says_not_found_for_an_unlisted_symbol(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/prices/binance/NOPEUSDT")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_it_maps_a_rate_limit(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    fake_rest["error"] = ccxt.RateLimitExceeded("binance 429")
    response = api.get("/api/prices/binance/BTCUSDT")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_says_exchange_unavailable_when_the_venue_is_down(api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EXCHANGE_VENUE_URL = f"http://127.0.0.1:{_closed_port()}"
    response = api.get("/api/prices/binance/BTCUSDT")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "EXCHANGE_UNAVAILABLE"
    # The Exchanges API now shows it unreachable with the error.
    status = api.get("/api/exchanges/binance").json()["data"]
    assert status["reachable"] is False and status["connected"] is False
    assert status["lastError"]["code"] == "EXCHANGE_UNAVAILABLE"
    assert status["venue"] == "emulator"


def test_it_batches_and_reports_a_bad_item_in_place(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    stored_book(BTC_SPOT, age_ms=10)
    items = [
        {"exchange": "binance", "symbol": "BTCUSDT"},
        {"exchange": "bybit", "symbol": "BTCUSDT", "type": "linear"},
        {"exchange": "kraken", "symbol": "BTCUSDT"},
        {"exchange": "binance", "symbol": "NOPEUSDT"},
    ]
    response = api.post("/api/prices/batch", {"items": items}, format="json")
    assert response.status_code == 200
    books = response.json()["data"]
    assert [b.get("source") for b in books[:2]] == ["stream", "rest"]
    assert books[1]["type"] == "linear"
    assert books[2]["error"]["code"] == "VALIDATION_ERROR" and books[2]["exchange"] == "kraken"
    assert books[3]["error"]["code"] == "NOT_FOUND" and books[3]["symbol"] == "NOPEUSDT"


def test_it_fetches_batch_misses_concurrently_with_one_client_per_exchange(api, fake_rest) -> None:  # type: ignore[no-untyped-def]
    items = [{"exchange": "binance", "symbol": s} for s in ("BTCUSDT", "ETHUSDT")]
    items.append({"exchange": "bybit", "symbol": "BTCUSDT", "type": "linear"})
    books = api.post("/api/prices/batch", {"items": items}, format="json").json()["data"]
    assert all("error" not in b for b in books)
    assert sorted(c.exchange for c in FakeRestClient.instances) == ["binance", "bybit"]
    assert all(c.closed for c in FakeRestClient.instances)


def test_it_validates_the_batch_body(api) -> None:  # type: ignore[no-untyped-def]
    too_many = {"items": [{"exchange": "binance", "symbol": "BTCUSDT"}] * 21}
    response = api.post("/api/prices/batch", too_many, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    bodies: list[dict[str, Any]] = [{}, {"items": []}, {"items": [{"exchange": "binance"}]}]
    for body in bodies:
        assert api.post("/api/prices/batch", body, format="json").status_code == 400

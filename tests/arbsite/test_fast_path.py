"""The ASGI fast path for `GET /api/prices/...` answers exactly like the Django view it shadows."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from arbsite import async_api, fast_path, metrics
from arbsite.asgi import application
from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.exchanges.stubs import MARKETS, fake_book

pytestmark = pytest.mark.django_db(transaction=True)

BTC_SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    async_api._TOKEN_CACHE.clear()
    fast_path._SESSIONS.clear()


def store_fresh_book() -> None:
    book = OrderBook.from_ccxt(fake_book(68000.1, 68000.2), BTC_SPOT, MARKETS[BTC_SPOT.unified],
                               received_ts=int(time.time() * 1000))
    write_book(book)


async def get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"testserver"), *headers])
    response = await communicator.get_response(timeout=5)
    return response["status"], json.loads(response["body"]), dict(response["headers"])


@pytest.fixture
def token() -> str:
    user = get_user_model().objects.create_user(username="fast", password="correct horse battery")
    return Token.objects.create(user=user).key


async def test_it_serves_a_cached_book_to_a_token_holder_like_the_view(token: str) -> None:
    await sync_to_async(store_fresh_book)()
    status, body, headers = await get("/api/prices/binance/BTCUSDT?type=spot",
                                      [(b"authorization", f"Token {token}".encode())])
    assert status == 200 and body["success"] is True
    data = body["data"]
    assert data["bids"][0] == ["68000.1", "0.5"] and data["source"] == "stream" and data["type"] == "spot"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert await sync_to_async(metrics.counter)("price_cache_hit") == 1
    assert await sync_to_async(metrics.counter)("api_requests") == 1


async def test_a_bad_token_gets_the_envelope_401(token: str) -> None:
    status, body, _ = await get("/api/prices/binance/BTCUSDT", [(b"authorization", b"Token not-a-token")])
    assert status == 401 and body["error"]["code"] == "AUTHENTICATION_REQUIRED"


async def test_no_credentials_fall_through_to_django_which_refuses() -> None:
    status, body, _ = await get("/api/prices/binance/BTCUSDT", [])
    assert status == 401 and body["error"]["code"] == "AUTHENTICATION_REQUIRED"


async def test_validation_errors_keep_their_codes(token: str) -> None:
    auth = [(b"authorization", f"Token {token}".encode())]
    status, body, _ = await get("/api/prices/kraken/BTCUSDT", auth)
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR" and "binance" in body["error"]["message"]
    status, body, _ = await get("/api/prices/binance/BTCUSDT?type=futures", auth)
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR"


async def test_a_browser_session_is_honoured(token: str) -> None:
    await sync_to_async(store_fresh_book)()

    def login() -> str:
        client = Client()
        assert client.login(username="fast", password="correct horse battery")
        return client.cookies["sessionid"].value

    session = await sync_to_async(login)()
    status, body, _ = await get("/api/prices/binance/BTCUSDT", [(b"cookie", f"sessionid={session}".encode())])
    assert status == 200 and body["data"]["exchange"] == "binance"
    status, body, _ = await get("/api/prices/binance/BTCUSDT", [(b"cookie", b"sessionid=forged")])
    assert status == 401  # an unknown session falls through to Django, which refuses it

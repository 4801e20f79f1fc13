"""Fixtures for the key tests: an encryption key, a clean env, and a Binance signature-checking stub.

The venue emulator (tests/venue) does not verify signatures, so wrong-key behaviour is
tested against `BinanceSignatureStub` (a MOCK exchange, labelled as such): it checks
`X-MBX-APIKEY` and the HMAC-SHA256 `signature` of the query string exactly as Binance
does, and answers a mismatch with Binance's real `{"code":-2015,...}` and HTTP 401.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from exchanges import connectivity
from exchanges.symbols import Exchange

ENV_SUFFIXES = ("_API_KEY", "_API_SECRET", "_SECRET", "_API_PASSPHRASE", "_PASSPHRASE")


def new_encryption_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees trading keys from the machine it runs on."""
    for exchange in Exchange:
        for suffix in ENV_SUFFIXES:
            monkeypatch.delenv(f"{exchange.value.upper()}{suffix}", raising=False)
    monkeypatch.delenv("CREDENTIALS_ENCRYPTION_KEY", raising=False)


@pytest.fixture
def encryption_key(settings: Any) -> str:
    settings.CREDENTIALS_ENCRYPTION_KEY = new_encryption_key()
    return str(settings.CREDENTIALS_ENCRYPTION_KEY)


@pytest.fixture
def no_encryption_key(settings: Any) -> None:
    settings.CREDENTIALS_ENCRYPTION_KEY = ""


class BinanceSignatureStub:
    """MOCK Binance: public exchangeInfo, and signed endpoints that verify key and signature."""

    INVALID_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}

    def __init__(self, api_key: str, secret: str, *, withdrawals: bool = False) -> None:
        self.api_key = api_key
        self.secret = secret
        self.withdrawals = withdrawals
        self.signed_requests = 0
        self.rejected = 0
        self.unmocked: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> BinanceSignatureStub:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def _signature_ok(self, request: web.Request, body: str) -> bool:
        query = request.query_string
        payload, _, signature = query.rpartition("&signature=")
        if not signature:
            payload, signature = query, request.query.get("signature", "")
        total = payload + body  # Binance signs the query string followed by the body
        expected = hmac.new(self.secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature) and request.headers.get("X-MBX-APIKEY") == self.api_key

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        if not path.startswith("/binance/"):
            return web.json_response({"code": -1, "msg": "this mock serves Binance only"}, status=404)
        if path.endswith("/exchangeInfo"):
            return web.json_response({"timezone": "UTC", "serverTime": int(time.time() * 1000),
                                      "rateLimits": [], "exchangeFilters": [], "symbols": []})
        if path.endswith("/time"):
            return web.json_response({"serverTime": int(time.time() * 1000)})
        if "/sapi/v1/margin/" in path and path.endswith("/allPairs"):  # key-only market data ccxt reads when keys are set
            return web.json_response([])
        self.signed_requests += 1
        if not self._signature_ok(request, await request.text()):
            self.rejected += 1
            return web.json_response(self.INVALID_KEY, status=401)
        if path.endswith("/api/v3/account"):
            return web.json_response({
                "makerCommission": 10, "takerCommission": 10, "canTrade": True, "canWithdraw": self.withdrawals,
                "updateTime": int(time.time() * 1000), "accountType": "SPOT",
                "balances": [{"asset": "USDT", "free": "1000.50000000", "locked": "20.00000000"},
                             {"asset": "BTC", "free": "0.01000000", "locked": "0.00000000"},
                             {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"}],
                "permissions": ["SPOT"],
            })
        if path.endswith("/sapi/v1/account/apiRestrictions"):
            return web.json_response({"ipRestrict": False, "createTime": 1700000000000,
                                      "enableWithdrawals": self.withdrawals, "enableInternalTransfer": False,
                                      "permitsUniversalTransfer": False, "enableVanillaOptions": False,
                                      "enableReading": True, "enableFutures": True, "enableMargin": False,
                                      "enableSpotAndMarginTrading": True})
        if "positionRisk" in path or path.endswith("/leverageBracket"):
            return web.json_response([])
        if path.endswith("/capital/config/getall"):
            return web.json_response([])
        self.unmocked.append(path)
        return web.json_response({"code": -1, "msg": "not mocked"}, status=404)


@pytest.fixture
def binance_stub(settings: Any) -> Iterator[BinanceSignatureStub]:
    """A running MOCK Binance; ccxt is pointed at it through EXCHANGE_VENUE_URL."""
    stub = BinanceSignatureStub("stub-key-0000000000000001", "stub-secret-0000000000000001").start()
    settings.EXCHANGE_VENUE_URL = stub.url
    settings.EXCHANGE_TIMEOUT_MS = 3000
    connectivity.forget_markets()
    yield stub
    connectivity.forget_markets()
    stub.stop()

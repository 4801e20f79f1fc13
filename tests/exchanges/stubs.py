"""Test doubles for ccxt clients (labelled Stub/Fake: tests only, never real data)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns truthy (or stops raising AssertionError); never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)

MARKETS: dict[str, dict[str, Any]] = {
    "BTC/USDT": {"symbol": "BTC/USDT", "spot": True, "linear": None,
                 "precision": {"price": 0.01, "amount": 1e-05}},
    "ETH/USDT": {"symbol": "ETH/USDT", "spot": True, "linear": None,
                 "precision": {"price": 0.01, "amount": 0.0001}},
    "BTC/USDT:USDT": {"symbol": "BTC/USDT:USDT", "spot": False, "linear": True,
                      "precision": {"price": 0.1, "amount": 0.001}},
}


def fake_book(bid: float, ask: float, ts: int = 1726032000000, size: float = 0.5) -> dict[str, Any]:
    return {"bids": [[bid, size], [bid - 0.1, size]], "asks": [[ask, size], [ask + 0.1, size]],
            "timestamp": ts, "nonce": ts}


class FakeRestClient:
    """Answers `fetch_order_book` from a table; `error` makes every fetch raise it."""

    precisionMode = 4
    instances: list[FakeRestClient] = []

    def __init__(self, exchange: str, books: dict[str, dict[str, Any]] | None = None,
                 error: Exception | None = None) -> None:
        self.exchange = exchange
        self.markets: dict[str, Any] = {}
        self.currencies: dict[str, Any] = {}
        self.books = books or {}
        self.error = error
        self.closed = False
        self.fetches: list[str] = []
        FakeRestClient.instances.append(self)

    async def load_markets(self, reload: bool = False) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.markets = MARKETS
        return MARKETS

    def set_markets(self, markets: dict[str, Any], currencies: Any = None) -> None:
        self.markets = markets

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        self.fetches.append(symbol)
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return self.books.get(symbol) or fake_book(68000.1, 68000.2)

    async def close(self) -> None:
        self.closed = True


class StubStreamClient:
    """A ccxt.pro stand-in: `watch_order_book` returns what the test pushes (books or exceptions)."""

    precisionMode = 4

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.markets: dict[str, Any] = MARKETS
        self.queues: dict[str, asyncio.Queue[Any]] = {}
        self.orderbooks: dict[str, Any] = {}
        self.clients: dict[str, Any] = {}
        self.unwatched: list[str] = []
        self.watch_calls = 0
        self.closed = False

    def queue(self, symbol: str) -> asyncio.Queue[Any]:
        return self.queues.setdefault(symbol, asyncio.Queue())

    def push(self, symbol: str, item: Any) -> None:
        self.queue(symbol).put_nowait(item)

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        self.watch_calls += 1
        item = await self.queue(symbol).get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def un_watch_order_book(self, symbol: str) -> None:
        self.unwatched.append(symbol)

    async def close(self) -> None:
        self.closed = True

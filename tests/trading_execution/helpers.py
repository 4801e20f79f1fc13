"""Recorded markets and books for execution tests, and labelled test venues (stubs only).

Markets are parsed by ccxt itself from the recorded exchangeInfo / instruments-info
responses (the client's `fetch` answers from the recordings; nothing reaches a network).
Books are the recorded REST / websocket snapshots written to Redis as the market-data
process would, with a fresh receive time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt

from arbsite.errors import ExchangeUnavailable, UpstreamError
from exchanges import connectivity
from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import OrderResult, OrderType, PaperVenue, Side

BYBIT_LINEAR_BTC = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
BINANCE_SPOT_BTC = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
BINANCE_LINEAR_BTC = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.LINEAR)


def _recorded_client(cls: type, data_dir: Path, answer: Callable[[str, str], str | None]) -> Any:
    client = cls({"options": {"fetchMarkets": {"types": ["spot", "linear"]}}})

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        name = answer(parts.path, parts.query)
        if name is None:
            return {"retCode": 0, "result": {"list": []}}
        return json.loads((data_dir / name).read_text())

    client.fetch = fetch
    return client


def recorded_markets(data_dir: Path) -> dict[Exchange, tuple[dict[str, Any], Any]]:
    def binance(path: str, query: str) -> str | None:
        return {
            "/api/v3/exchangeInfo": "binance/metadata/spot_exchangeInfo_2021-10-12_trimmed.json",
            "/fapi/v1/exchangeInfo": "binance/metadata/usdm_exchangeInfo_2021-07-22_trimmed.json",
        }[path]

    def bybit(path: str, query: str) -> str | None:
        if "PreLaunch" in query:
            return None
        if "category=spot" in query:
            return "bybit/metadata/spot_instruments-info_2026-08-09_trimmed.json"
        return "bybit/metadata/linear_instruments-info_2026-08-09_trimmed.json"

    out = {}
    for exchange, cls, answer in ((Exchange.BINANCE, ccxt.binance, binance), (Exchange.BYBIT, ccxt.bybit, bybit)):
        client = _recorded_client(cls, data_dir, answer)
        out[exchange] = (client.load_markets(), client.currencies)
    return out


def seed_markets(markets: dict[Exchange, tuple[dict[str, Any], Any]]) -> None:
    """Put recorded markets into connectivity's per-process cache, as a first load would."""
    for exchange, (m, currencies) in markets.items():
        connectivity._MARKETS[exchange] = (m, currencies, time.monotonic())


def _levels(rows: list[list[str]], depth: int) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(s)) for p, s in rows[:depth]]


def recorded_book(data_dir: Path, instrument: Instrument, depth: int = 50) -> OrderBook:
    if instrument == BYBIT_LINEAR_BTC:
        path = data_dir / "bybit/orderbook/linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"
        with gzip.open(path, "rt") as fh:
            data = json.loads(fh.readline())["msg"]["data"]
        bids, asks = data["b"], data["a"]
    elif instrument == BINANCE_SPOT_BTC:
        data = json.loads((data_dir / "binance/orderbook/spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json").read_text())
        bids, asks = data["bids"], data["asks"]
    elif instrument == BINANCE_LINEAR_BTC:
        data = json.loads((data_dir / "binance/orderbook/usdm_BTCUSDT_2024-08-08_rest_depth_limit1000.json").read_text())
        bids, asks = data["bids"], data["asks"]
    else:  # pragma: no cover
        raise ValueError(instrument)
    return OrderBook(instrument.exchange, instrument.symbol, instrument.type, _levels(bids, depth),
                     _levels(asks, depth), ts=int(time.time() * 1000), source="recorded")


def write_recorded_book(data_dir: Path, instrument: Instrument, *, as_instrument: Instrument | None = None,
                        depth: int = 50) -> OrderBook:
    """Store a recorded book under `as_instrument` (default: its own) with a fresh receive time."""
    book = recorded_book(data_dir, instrument, depth)
    target = as_instrument or instrument
    book = OrderBook(target.exchange, target.symbol, target.type, book.bids, book.asks, book.ts, source="recorded")
    write_book(book)
    return book


class SimulatedCrash(BaseException):
    """Stands in for the worker process dying (SIGKILL): nothing after it runs."""


class StubVenue:
    """Wraps a real PaperVenue; hooks let a test fail or crash around `create_order`.

    `lose_answer`: the order is placed but its answer never comes back (the caller times out);
    `lookup_fails`: looking an order up raises EXCHANGE_UNAVAILABLE (the venue cannot say).
    """

    def __init__(self, exchange: Exchange, *, reject: bool = False, crash_before: Callable[[], Any] | None = None,
                 crash_after: bool = False, before: Callable[[Instrument], None] | None = None,
                 lose_answer: bool = False, lookup_fails: bool = False,
                 fee_in: tuple[str, Decimal] | None = None) -> None:
        self.inner = PaperVenue(exchange)
        self.exchange = exchange
        self.paper = True
        self.reject = reject
        self.crash_before = crash_before
        self.crash_after = crash_after
        self.before = before
        self.lose_answer = lose_answer
        self.lookup_fails = lookup_fails
        self.fee_in = fee_in  # (asset, amount): the venue charged the fee in another asset (BNB, say)
        self.create_calls: list[str] = []

    async def rules(self, instrument: Instrument) -> Any:
        return await self.inner.rules(instrument)

    def amount_to_precision(self, instrument: Instrument, qty: Decimal) -> Decimal:
        return self.inner.amount_to_precision(instrument, qty)

    def price_to_precision(self, instrument: Instrument, price: Decimal) -> Decimal:
        return self.inner.price_to_precision(instrument, price)

    async def create_order(self, instrument: Instrument, side: Side | str, qty: Decimal, *,
                           order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None,
                           client_order_id: str) -> OrderResult:
        self.create_calls.append(client_order_id)
        if self.crash_before is not None:
            await self.crash_before()
            raise SimulatedCrash("worker killed before sending")
        if self.reject:
            raise UpstreamError(f"{self.exchange} rejected the request: order rejected (stub)")
        if self.before is not None:
            self.before(instrument)
        result = await self.inner.create_order(instrument, side, qty, order_type=order_type, price=price,
                                               client_order_id=client_order_id)
        if self.crash_after:
            raise SimulatedCrash("worker killed after sending, before recording")
        if self.lose_answer:
            await asyncio.sleep(3600)  # placed, but the answer is lost on the way back
        if self.fee_in is not None and result.filled:
            result = dataclasses.replace(result, fee=self.fee_in[1], fee_currency=self.fee_in[0], fills=())
        return result

    async def fetch_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        if self.lookup_fails:
            raise ExchangeUnavailable(f"{self.exchange}: lookup failed (stub)")
        return await self.inner.fetch_order(instrument, client_order_id)

    async def cancel_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        return await self.inner.cancel_order(instrument, client_order_id)

    async def fetch_balance(self) -> dict[str, Decimal]:
        return await self.inner.fetch_balance()

    async def fetch_positions(self) -> list[dict[str, Any]]:
        return await self.inner.fetch_positions()

    async def close(self) -> None:
        await self.inner.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll `check` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)

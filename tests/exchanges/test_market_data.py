"""The market-data loop against stub ccxt clients: books to Redis, throttled price_update,
listeners, stale/crossed/gap handling, backoff, instrument registry and clean shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt
import pytest

from arbsite.redis_client import get_async_redis, get_redis, key
from exchanges import market_data
from exchanges.market_data import (
    CROSSED_BOOK,
    SEQUENCE_GAP,
    STREAM_STALE,
    MarketData,
    backoff_delay,
    install_sequence_guard,
    register_book_listener,
    register_instrument_source,
    unregister_book_listener,
    unregister_instrument_source,
)
from exchanges.order_books import OrderBook, StreamState, read_book, read_stream_statuses
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.exchanges.stubs import StubStreamClient, eventually, fake_book

BTC_SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
BTC_LINEAR = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)


class Harness:
    def __init__(self) -> None:
        self.clients: dict[Exchange, StubStreamClient] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.instruments: set[Instrument] = {BTC_SPOT}
        self.created = 0

    def factory(self, exchange: Exchange) -> StubStreamClient:
        self.created += 1
        client = StubStreamClient(exchange.value)
        self.clients[exchange] = client
        return client

    async def publish(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == event]

    def client(self, exchange: Exchange = Exchange.BINANCE) -> StubStreamClient:
        return self.clients[exchange]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    yield Harness()


Runner = Callable[..., Awaitable[tuple[MarketData, asyncio.Event, asyncio.Task[None]]]]


@pytest.fixture
async def start(harness: Harness) -> AsyncIterator[Runner]:
    running: list[tuple[asyncio.Event, asyncio.Task[None], Any]] = []

    async def _start(**kwargs: Any) -> tuple[MarketData, asyncio.Event, asyncio.Task[None]]:
        redis = get_async_redis()
        options: dict[str, Any] = {
            "redis": redis, "stale_seconds": 5.0, "min_interval_ms": 0, "heartbeat_seconds": 0.05,
            "refresh_seconds": 0.05, "backoff": lambda attempt: 0.01,
            "instruments": lambda: set(harness.instruments),
        }
        options.update(kwargs)
        service = MarketData(harness.factory, harness.publish, **options)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        running.append((stop, task, redis))
        await eventually(lambda: service.streams)
        return service, stop, task

    yield _start
    for stop, task, redis in running:
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()


async def test_it_writes_books_and_publishes_price_updates(harness: Harness, start: Runner) -> None:
    seen: list[OrderBook] = []

    async def listener(book: OrderBook) -> None:
        seen.append(book)

    register_book_listener(listener)
    try:
        _service, _, _ = await start()
        await eventually(lambda: Exchange.BINANCE in harness.clients)
        harness.client().push("BTC/USDT", fake_book(68000.1, 68000.2, ts=1))
        await eventually(lambda: read_book(BTC_SPOT))
        book = read_book(BTC_SPOT)
        assert book is not None and book.to_contract()["bids"][0] == ["68000.1", "0.5"]
        assert book.venue == "live" and book.source == "stream"
        await eventually(lambda: harness.of("price_update"))
        update = harness.of("price_update")[0]
        assert update.pop("recvTs") == book.received_ts  # our receive time, for tick -> client latency
        assert update == {"exchange": "binance", "symbol": "BTCUSDT", "type": "spot", "bid": 68000.1,
                          "ask": 68000.2, "ts": 1, "venue": "live"}
        await eventually(lambda: seen)
        assert seen[0].best_bid == book.best_bid
        await eventually(lambda: read_stream_statuses()["binance:spot:BTCUSDT"].state is StreamState.LIVE)
    finally:
        unregister_book_listener(listener)


async def test_it_throttles_but_never_loses_the_last_change(harness: Harness, start: Runner) -> None:
    await start(min_interval_ms=300)
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    for i in range(6):
        harness.client().push("BTC/USDT", fake_book(68000.0 + i, 68010.0 + i, ts=i + 1))
    await eventually(lambda: harness.of("price_update") and harness.of("price_update")[-1]["bid"] == 68005.0)
    updates = harness.of("price_update")
    assert len(updates) == 2  # the first at once, the last after the window
    assert updates[0]["bid"] == 68000.0


async def test_it_does_not_republish_an_unchanged_top_of_book(harness: Harness, start: Runner) -> None:
    await start(min_interval_ms=0)
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    for i in range(3):
        harness.client().push("BTC/USDT", fake_book(68000.0, 68010.0, ts=i + 1, size=1 + i))
    await eventually(lambda: read_book(BTC_SPOT) and read_book(BTC_SPOT).ts == 3)  # type: ignore[union-attr]
    assert len(harness.of("price_update")) == 1


async def test_it_flags_a_quiet_stream_stale_and_reconnects(harness: Harness, start: Runner) -> None:
    service, _, _ = await start(stale_seconds=0.2, watchdog_seconds=0.02)
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    harness.client().push("BTC/USDT", fake_book(68000.1, 68000.2, ts=1))
    await eventually(lambda: harness.of("engine_alert"))
    alert = harness.of("engine_alert")[0]
    assert alert["code"] == STREAM_STALE and alert["severity"] == "warning"
    assert alert["exchange"] == "binance" and alert["symbol"] == "BTCUSDT"
    assert service.streams[BTC_SPOT].status.state is StreamState.STALE
    await eventually(lambda: read_stream_statuses()["binance:spot:BTCUSDT"].state is StreamState.STALE)
    # Still quiet: a resubscribe is attempted (fresh snapshot requested).
    await eventually(lambda: harness.client().unwatched == ["BTC/USDT"] or len(harness.client().unwatched) >= 1)
    # Data again: live.
    harness.client().push("BTC/USDT", fake_book(68000.3, 68000.4, ts=2))
    await eventually(lambda: service.streams[BTC_SPOT].status.state is StreamState.LIVE)


async def test_it_flags_an_exchange_clock_that_does_not_move(harness: Harness, start: Runner) -> None:
    _service, _, _ = await start(stale_seconds=0.2, watchdog_seconds=0.02)
    await eventually(lambda: Exchange.BINANCE in harness.clients)

    async def feed() -> None:
        for i in range(40):
            harness.client().push("BTC/USDT", fake_book(68000.0 + i, 68010.0 + i, ts=7))
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(feed())
    try:
        await eventually(lambda: harness.of("engine_alert"))
        assert harness.of("engine_alert")[0]["code"] == STREAM_STALE
        assert "timestamp" in harness.of("engine_alert")[0]["message"]
    finally:
        feeder.cancel()


async def test_it_refuses_a_crossed_book_and_resyncs(harness: Harness, start: Runner) -> None:
    service, _, _ = await start()
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    harness.client().push("BTC/USDT", fake_book(68010.0, 68000.0, ts=1))
    await eventually(lambda: harness.of("engine_alert"))
    alert = harness.of("engine_alert")[0]
    assert alert["code"] == CROSSED_BOOK and alert["severity"] == "error"
    assert read_book(BTC_SPOT) is None  # never stored
    assert harness.client().unwatched == ["BTC/USDT"]
    harness.client().push("BTC/USDT", fake_book(68000.0, 68000.5, ts=2))
    await eventually(lambda: read_book(BTC_SPOT))
    await eventually(lambda: service.streams[BTC_SPOT].status.state is StreamState.LIVE)


async def test_it_resyncs_after_a_sequence_gap(harness: Harness, start: Runner) -> None:
    service, _, _ = await start()
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    client = harness.client()
    client.orderbooks["BTC/USDT"] = object()
    client.push("BTC/USDT", ccxt.ChecksumError("binance out-of-order nonce"))
    await eventually(lambda: harness.of("engine_alert"))
    assert harness.of("engine_alert")[0]["code"] == SEQUENCE_GAP
    assert "BTC/USDT" not in client.orderbooks and client.unwatched == ["BTC/USDT"]
    assert service.streams[BTC_SPOT].status.reconnects == 1
    client.push("BTC/USDT", fake_book(68000.0, 68000.5, ts=2))
    await eventually(lambda: service.streams[BTC_SPOT].status.state is StreamState.LIVE)


async def test_it_backs_off_and_reports_an_unreachable_exchange(harness: Harness, start: Runner) -> None:
    delays: list[int] = []

    def backoff(attempt: int) -> float:
        delays.append(attempt)
        return 0.01

    service, _, _ = await start(backoff=backoff)
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    for _ in range(4):
        harness.client().push("BTC/USDT", ccxt.NetworkError("connection refused"))
    await eventually(lambda: len(delays) >= 4)
    assert delays[:4] == [0, 1, 2, 3]
    status = service.streams[BTC_SPOT].status
    assert status.error_code == "EXCHANGE_UNAVAILABLE"
    assert status.state is StreamState.ERROR
    assert read_book(BTC_SPOT) is None  # nothing invented
    assert [a["code"] for a in harness.of("engine_alert")][:1] == ["EXCHANGE_UNAVAILABLE"]
    # Recovery resets the schedule.
    harness.client().push("BTC/USDT", fake_book(68000.0, 68000.5, ts=2))
    await eventually(lambda: status.state is StreamState.LIVE)
    assert service.streams[BTC_SPOT].attempt == 0


def test_backoff_schedule_is_exponential_with_jitter_and_capped() -> None:
    low = [backoff_delay(a, rng=lambda: 0.0) for a in range(8)]
    high = [backoff_delay(a, rng=lambda: 1.0) for a in range(8)]
    assert high[:4] == [0.5, 1.0, 2.0, 4.0]
    assert low[:4] == [0.25, 0.5, 1.0, 2.0]
    assert backoff_delay(50, rng=lambda: 1.0) == 30.0
    assert all(lo <= hi for lo, hi in zip(low, high, strict=True))


async def test_it_follows_registered_instrument_sources(harness: Harness, start: Runner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MARKETDATA_SYMBOLS = ["binance:spot:BTCUSDT"]
    used: set[Instrument] = set()

    def pairs_in_use() -> set[Instrument]:
        return set(used)

    register_instrument_source(pairs_in_use)
    try:
        service, _, _ = await start(instruments=market_data.watched_instruments)
        assert set(service.streams) == {BTC_SPOT}
        used.add(BTC_LINEAR)
        await eventually(lambda: BTC_LINEAR in service.streams)
        used.clear()
        await eventually(lambda: BTC_LINEAR not in service.streams)
    finally:
        unregister_instrument_source(pairs_in_use)


async def test_it_writes_a_heartbeat(harness: Harness, start: Runner) -> None:
    await start()

    def beat() -> dict[str, Any] | None:
        raw = get_redis().get(key("marketdata", "heartbeat"))
        return json.loads(raw) if raw else None

    data = await eventually(beat)
    assert data["streams"] == {"binance:spot:BTCUSDT": "connecting"}
    assert isinstance(data["pid"], int) and data["ts"] > 0


async def test_it_stops_cleanly_closing_clients(harness: Harness, start: Runner) -> None:
    service, stop, task = await start()
    await eventually(lambda: Exchange.BINANCE in harness.clients)
    stream_task = service.streams[BTC_SPOT].task
    stop.set()
    await asyncio.wait_for(task, 5)
    assert harness.client().closed
    assert stream_task is not None and stream_task.cancelled()
    assert service.streams == {}


class FakeWs:
    url = "wss://stream.bybit.com/v5/public/linear"

    def __init__(self) -> None:
        self.rejected: list[tuple[BaseException, str]] = []

    def reject(self, error: BaseException, message_hash: str) -> None:
        self.rejected.append((error, message_hash))


class FakeBybit:
    def __init__(self) -> None:
        self.handled: list[int] = []
        self.orderbooks: dict[str, Any] = {"BTC/USDT:USDT": object()}

    def handle_order_book(self, ws: Any, message: dict[str, Any]) -> None:
        self.handled.append(message["data"]["u"])

    def safe_market(self, market_id: str, *args: Any) -> dict[str, Any]:
        return {"symbol": "BTC/USDT:USDT"}


def test_the_bybit_guard_catches_a_skipped_update() -> None:
    client = FakeBybit()
    install_sequence_guard(client, Exchange.BYBIT)
    ws = FakeWs()

    def msg(kind: str, u: int) -> dict[str, Any]:
        return {"topic": "orderbook.50.BTCUSDT", "type": kind, "data": {"s": "BTCUSDT", "u": u, "b": [], "a": []}}

    client.handle_order_book(ws, msg("snapshot", 100))
    client.handle_order_book(ws, msg("delta", 101))
    client.handle_order_book(ws, msg("delta", 103))  # 102 missing
    assert client.handled == [100, 101]
    assert isinstance(ws.rejected[0][0], ccxt.InvalidNonce)
    assert ws.rejected[0][1] == "orderbook:BTC/USDT:USDT"
    assert "BTC/USDT:USDT" not in client.orderbooks
    client.handle_order_book(ws, msg("snapshot", 500))
    client.handle_order_book(ws, msg("delta", 501))
    assert client.handled == [100, 101, 500, 501]


async def test_a_subscription_that_never_delivers_is_stale(harness: Harness, start: Runner) -> None:
    service, _, _ = await start(stale_seconds=0.2, watchdog_seconds=0.02)
    await eventually(lambda: harness.of("engine_alert"))
    assert harness.of("engine_alert")[0]["code"] == STREAM_STALE
    assert service.streams[BTC_SPOT].status.state is StreamState.STALE

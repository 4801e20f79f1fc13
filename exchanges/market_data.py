"""The market-data process: one websocket order-book stream per leg in use.

Each watched instrument gets an asyncio task around ccxt.pro `watch_order_book` (one client
per exchange, shared). Every book goes to Redis, to the registered book listeners
(event-driven detection) and, throttled, to `price_update`. Streams that stop moving are
flagged stale and reconnected; sequence gaps and crossed books force a fresh snapshot;
errors back off exponentially with jitter. It never writes a price it did not receive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt
from django.conf import settings
from django.db import close_old_connections

from arbsite.errors import ErrorCode, NotFound, ValidationFailed
from arbsite.memory import freeze_again_if_frozen, freeze_long_lived
from arbsite.redis_client import get_async_redis, key
from exchanges import connectivity
from exchanges.book_checksums import ChecksumBook
from exchanges.order_books import (
    TICK_SIZE,
    OrderBook,
    StreamState,
    StreamStatus,
    arecord_exchange_outcome,
    aremove_stream_status,
    awrite_book,
    awrite_stream_status,
    now_ms,
)
from exchanges.symbols import Exchange, Instrument, SymbolError

logger = logging.getLogger("exchanges.marketdata")

InstrumentSource = Callable[[], Iterable[Instrument]]
BookListener = Callable[[OrderBook], Awaitable[None]]
Publisher = Callable[[str, dict[str, Any]], Awaitable[None]]
ClientFactory = Callable[[Exchange], Any]

HEARTBEAT_KEY_PARTS = ("marketdata", "heartbeat")

# Alert codes beyond the API's list: stream health has no contract code of its own.
STREAM_STALE = "STREAM_STALE"
CROSSED_BOOK = "CROSSED_BOOK"
SEQUENCE_GAP = "SEQUENCE_GAP"

SHUTDOWN_WAIT_SECONDS = 3.0
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0

_SOURCES: list[InstrumentSource] = []
_LISTENERS: list[BookListener] = []


def register_instrument_source(fn: InstrumentSource) -> None:
    """Trading (pairs) and TWAP (plans) say which legs they use; re-read every few seconds."""
    if fn not in _SOURCES:
        _SOURCES.append(fn)


def unregister_instrument_source(fn: InstrumentSource) -> None:
    if fn in _SOURCES:
        _SOURCES.remove(fn)


def register_book_listener(fn: BookListener) -> None:
    """`async fn(book)` runs on every book update of a watched leg (event-driven detection)."""
    if fn not in _LISTENERS:
        _LISTENERS.append(fn)


def unregister_book_listener(fn: BookListener) -> None:
    if fn in _LISTENERS:
        _LISTENERS.remove(fn)


def configured_instruments() -> set[Instrument]:
    out: set[Instrument] = set()
    for text in getattr(settings, "MARKETDATA_SYMBOLS", []):
        try:
            out.add(Instrument.parse_key(text))
        except SymbolError:
            logger.error("bad MARKETDATA_SYMBOLS entry %r", text, extra={"event": "marketdata_bad_symbol"})
    return out


# The last answer of each source: a brief database error must not stop every stream it feeds.
_LAST_GOOD: dict[InstrumentSource, set[Instrument]] = {}


def watched_instruments() -> set[Instrument]:
    """Settings ∪ every registered source; a failing source keeps its last good answer."""
    out = configured_instruments()
    for source in list(_SOURCES):
        try:
            answer = set(source())
        except Exception:
            logger.exception("instrument source failed", extra={"event": "marketdata_source_failed"})
            answer = _LAST_GOOD.get(source, set())
        else:
            _LAST_GOOD[source] = answer
        out.update(answer)
    return out


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS,
                  rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with equal jitter: in [d/2, d] for d = min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return ceiling / 2 + rng() * ceiling / 2


async def publish_event(event: str, data: dict[str, Any]) -> None:
    """Sends through arbsite.events (imported late: the process must run without it)."""
    try:
        from arbsite.events import apublish
    except ImportError:
        logger.warning("arbsite.events missing; %s not published", event, extra={"event": "publish_unavailable"})
        return
    await apublish(event, data)  # type: ignore[arg-type]  # our events are all in EventName


class PriceThrottle:
    """At most one `price_update` per interval, but the last top-of-book change always goes out."""

    def __init__(self, interval_s: float, send: Callable[[OrderBook], Awaitable[None]]) -> None:
        self.interval_s = interval_s
        self.send = send
        self.last_sent_at: float | None = None
        self.last_top: tuple[Decimal | None, Decimal | None] | None = None
        self.latest: OrderBook | None = None
        self.timer: asyncio.Task[None] | None = None

    async def offer(self, book: OrderBook) -> None:
        top = (book.best_bid, book.best_ask)
        self.latest = book
        if top == self.last_top:
            return
        now = time.monotonic()
        if self.last_sent_at is None or now - self.last_sent_at >= self.interval_s:
            await self._send(book)
        elif self.timer is None or self.timer.done():
            self.timer = asyncio.create_task(self._trailing(self.last_sent_at + self.interval_s - now))

    async def _trailing(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        book = self.latest
        if book is not None and (book.best_bid, book.best_ask) != self.last_top:
            await self._send(book)

    async def _send(self, book: OrderBook) -> None:
        self.last_sent_at = time.monotonic()
        self.last_top = (book.best_bid, book.best_ask)
        try:
            await self.send(book)
        except Exception:
            logger.warning("price_update publish failed", extra={"event": "publish_failed"}, exc_info=True)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


@dataclass
class Stream:
    """Book-keeping for one watched instrument."""

    instrument: Instrument
    status: StreamStatus
    throttle: PriceThrottle
    task: asyncio.Task[None] | None = None
    started_mono: float = 0.0
    last_update_mono: float | None = None
    last_ts_change_mono: float | None = None
    stale_since_mono: float | None = None
    crossed: bool = False
    attempt: int = 0


class MarketData:
    """The long-running loop; inject `client_factory`, `publisher` and `sleep` to test it."""

    def __init__(
        self,
        client_factory: ClientFactory | None = None,
        publisher: Publisher | None = None,
        *,
        redis: Any = None,
        stale_seconds: float | None = None,
        min_interval_ms: int | None = None,
        depth: int | None = None,
        refresh_seconds: float = 5.0,
        markets_check_seconds: float = 60.0,
        heartbeat_seconds: float = 1.0,
        watchdog_seconds: float | None = None,
        backoff: Callable[[int], float] = backoff_delay,
        instruments: Callable[[], set[Instrument]] = watched_instruments,
    ) -> None:
        self.client_factory = client_factory or connectivity.async_client
        self.publisher = publisher or publish_event
        self.redis = redis
        self.stale_seconds = stale_seconds or float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0))
        interval = min_interval_ms if min_interval_ms is not None else getattr(
            settings, "PRICE_UPDATE_MIN_INTERVAL_MS", 100)
        self.min_interval_s = interval / 1000
        self.depth = depth or int(getattr(settings, "ORDER_BOOK_DEPTH", 20))
        self.refresh_seconds = refresh_seconds
        self.markets_check_seconds = markets_check_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.watchdog_seconds = watchdog_seconds or min(1.0, self.stale_seconds / 4)
        self.backoff = backoff
        self.instruments = instruments
        self.venue = connectivity.venue_label()
        self.streams: dict[Instrument, Stream] = {}
        self.clients: dict[Exchange, Any] = {}
        self._client_locks: dict[Exchange, asyncio.Lock] = {}
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False

    # --- lifecycle --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then cancel every task and close every client."""
        if self.redis is None:
            self.redis = get_async_redis()
        logger.info("market data starting", extra={"event": "marketdata_start"})
        await self.refresh()
        self._background = [
            asyncio.create_task(self._every(self.refresh_seconds, self.refresh)),
            asyncio.create_task(self._every(self.heartbeat_seconds, self.heartbeat)),
            asyncio.create_task(self._every(self.markets_check_seconds, self.refresh_markets)),
            asyncio.create_task(self._every(self.watchdog_seconds, self.check_staleness)),
        ]
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Cancel everything, but never hang: SIGTERM must end the process promptly."""
        self._stopping = True
        for task in self._background:
            task.cancel()
        await _wait_quietly(self._background, SHUTDOWN_WAIT_SECONDS)
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.throttle.cancel()
            if stream.task is not None:
                stream.task.cancel()
        await _wait_quietly([s.task for s in streams if s.task is not None], SHUTDOWN_WAIT_SECONDS)
        for exchange, client in list(self.clients.items()):
            await self._close_client(exchange, client)
        self.clients.clear()
        try:
            await asyncio.wait_for(self.heartbeat(), SHUTDOWN_WAIT_SECONDS)
        except Exception:  # noqa: BLE001 - Redis may be gone at shutdown
            pass
        logger.info("market data stopped", extra={"event": "marketdata_stop"})

    async def _every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("market data housekeeping failed", extra={"event": "marketdata_housekeeping_failed"})

    async def refresh(self) -> None:
        """Start streams for newly used instruments, stop those no longer used."""
        # Sources may query the database: run them off the event loop.
        wanted = await asyncio.to_thread(self._instruments_now)
        if self._stopping:
            return
        for instrument in wanted - set(self.streams):
            self._start_stream(instrument)
        for instrument in set(self.streams) - wanted:
            await self._stop_stream(instrument)
            logger.info("stream stopped (no longer used)", extra={
                "event": "stream_stopped", "exchange": instrument.exchange.value, "symbol": instrument.symbol})

    async def refresh_markets(self) -> None:
        """Reload markets ahead of their max age (contract sizes and precisions shape every book).

        A reload that fails keeps the previous markets (connectivity logs it); streams pick the new
        markets up on their next update (`follow_markets`, no I/O).
        """
        ahead = float(getattr(settings, "MARKETS_REFRESH_AHEAD_SECONDS", 300))
        for exchange, client in list(self.clients.items()):
            if not connectivity.follows_cache(client):
                continue
            try:
                if await connectivity.refresh_markets(client, exchange, within=max(ahead, self.markets_check_seconds)):
                    freeze_again_if_frozen()
            except Exception as exc:  # noqa: BLE001 - the streams go on with the markets they have
                logger.warning("markets refresh failed", extra={"event": "markets_refresh_failed",
                                                               "exchange": exchange.value, "detail": _short(exc)})

    def _instruments_now(self) -> set[Instrument]:
        try:
            return self.instruments()
        finally:
            close_old_connections()

    def _start_stream(self, instrument: Instrument) -> Stream:
        async def send(book: OrderBook) -> None:
            await self.publisher("price_update", price_update_payload(book))

        stream = Stream(
            instrument=instrument,
            status=StreamStatus(instrument=instrument.key),
            throttle=PriceThrottle(self.min_interval_s, send),
            started_mono=time.monotonic(),
        )
        self.streams[instrument] = stream
        stream.task = asyncio.create_task(self._run_stream(stream), name=f"book:{instrument.key}")
        return stream

    async def _stop_stream(self, instrument: Instrument) -> None:
        stream = self.streams.pop(instrument, None)
        if stream is None:
            return
        stream.throttle.cancel()
        if stream.task is not None:
            stream.task.cancel()
            await _wait_quietly([stream.task], SHUTDOWN_WAIT_SECONDS)
        if self.redis is not None:
            try:
                await aremove_stream_status(self.redis, instrument.key)
            except Exception:  # noqa: BLE001 - status cleanup is best effort
                pass

    # --- clients ----------------------------------------------------------------------

    async def client_for(self, exchange: Exchange) -> Any:
        lock = self._client_locks.setdefault(exchange, asyncio.Lock())
        async with lock:
            client = self.clients.get(exchange)
            if client is None:
                client = self.client_factory(exchange)
                install_sequence_guard(client, exchange)
                self.clients[exchange] = client
            if not getattr(client, "markets", None):
                await connectivity.load_markets(client, exchange)
                freeze_long_lived()  # this exchange's markets stay for the process's life
            elif connectivity.follows_cache(client):
                connectivity.follow_markets(client, exchange)  # newer markets from a refresh; no I/O
            return client

    async def _close_client(self, exchange: Exchange, client: Any) -> None:
        try:
            await client.close()
        except Exception:
            logger.debug("client close failed", exc_info=True)

    # --- one stream -------------------------------------------------------------------

    async def _run_stream(self, stream: Stream) -> None:
        instrument = stream.instrument
        exchange = instrument.exchange
        await self._set_state(stream, StreamState.CONNECTING)
        while True:
            try:
                client = await self.client_for(exchange)
                market = connectivity.market_for(client.markets, instrument)
                raw = await client.watch_order_book(market["symbol"])
                stream.attempt = 0
                await self._on_book(stream, client, market, raw)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    raise
                # ccxt cancelled its own future (we closed a stalled connection): resubscribe,
                # and watch the new subscription for staleness from now on.
                stream.started_mono = time.monotonic()
                stream.last_update_mono = stream.last_ts_change_mono = None
                await self._set_state(stream, StreamState.CONNECTING, "RESYNC", "connection reset")
            except (NotFound, ValidationFailed) as exc:
                # Not listed: retrying fast will not list it; check again slowly.
                await self._fail(stream, exc.error_code, str(exc.detail), StreamState.ERROR)
                await asyncio.sleep(BACKOFF_CAP_SECONDS)
            except ccxt.InvalidNonce as exc:
                # Missed diff (ccxt dropped the book): record it and take a fresh snapshot.
                await self._fail(stream, SEQUENCE_GAP, f"sequence gap: {_short(exc)}", StreamState.RECONNECTING)
                await self._resync(stream)
                stream.status.reconnects += 1
                await asyncio.sleep(self.backoff(0) / 4)
            except Exception as exc:  # noqa: BLE001 - every failure is reported and retried
                error = connectivity.translate(exc, exchange)
                state = StreamState.RECONNECTING if stream.attempt < 3 else StreamState.ERROR
                await self._fail(stream, error.error_code, str(error.detail), state)
                delay = self.backoff(stream.attempt)
                stream.attempt += 1
                stream.status.reconnects += 1
                logger.info("stream reconnecting in %.2fs", delay, extra={
                    "event": "stream_backoff", "exchange": exchange.value, "symbol": instrument.symbol,
                    "error_code": error.error_code})
                await asyncio.sleep(delay)

    async def _on_book(self, stream: Stream, client: Any, market: dict[str, Any], raw: dict[str, Any]) -> None:
        book = OrderBook.from_ccxt(
            raw, stream.instrument, market, getattr(client, "precisionMode", TICK_SIZE),
            depth=self.depth, venue=self.venue, source="stream",
        )
        if not book.bids or not book.asks:
            return  # half a book (snapshot pending); nothing trustworthy to store yet
        if book.is_crossed:
            if not stream.crossed:
                stream.crossed = True
                await self._fail(stream, CROSSED_BOOK,
                                 f"crossed book: bid {book.best_bid} >= ask {book.best_ask}", StreamState.ERROR)
            await self._resync(stream)
            return
        stream.crossed = False
        mono = time.monotonic()
        if stream.status.exchange_ts != book.ts or stream.last_ts_change_mono is None:
            stream.last_ts_change_mono = mono
        stream.last_update_mono = mono
        stream.stale_since_mono = None
        stream.status.last_update_ms = book.received_ts
        stream.status.exchange_ts = book.ts
        await awrite_book(book, self.redis)
        if stream.status.state is not StreamState.LIVE:
            await self._set_state(stream, StreamState.LIVE)
            await arecord_exchange_outcome(self.redis, stream.instrument.exchange, True, "stream")
        for listener in list(_LISTENERS):
            try:
                await listener(book)
            except Exception:
                logger.exception("book listener failed", extra={
                    "event": "book_listener_failed", "exchange": book.exchange.value, "symbol": book.symbol})
        await stream.throttle.offer(book)

    async def _resync(self, stream: Stream) -> None:
        """Drop ccxt's copy of the book and its subscription so the next watch starts from a snapshot."""
        client = self.clients.get(stream.instrument.exchange)
        if client is None:
            return
        unified = stream.instrument.unified
        unwatch = getattr(client, "un_watch_order_book", None)
        if unwatch is not None:
            try:
                await asyncio.wait_for(unwatch(unified), timeout=2.0)
            except Exception:  # noqa: BLE001 - unsubscribe is best effort
                pass
        books = getattr(client, "orderbooks", None)
        if isinstance(books, dict):
            books.pop(unified, None)
        for ws in list((getattr(client, "clients", None) or {}).values()):
            subs = getattr(ws, "subscriptions", None)
            if isinstance(subs, dict):
                for name in [h for h in subs if isinstance(h, str) and "orderbook" in h and unified in h]:
                    del subs[name]

    async def _reconnect(self, stream: Stream) -> None:
        """A stalled connection never errors by itself: close it so ccxt dials a new one."""
        client = self.clients.get(stream.instrument.exchange)
        await self._resync(stream)
        if client is None:
            return
        ws_clients = getattr(client, "clients", None) or {}
        for url, ws in list(ws_clients.items()):
            futures = getattr(ws, "futures", {}) or {}
            if any(isinstance(h, str) and stream.instrument.unified in h for h in futures):
                ws_clients.pop(url, None)
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001 - a dead socket may refuse to close cleanly
                    pass

    # --- health -----------------------------------------------------------------------

    async def check_staleness(self) -> None:
        """No update for `stale_seconds`, or the exchange clock not moving: flag, then reconnect."""
        mono = time.monotonic()
        for stream in list(self.streams.values()):
            if stream.status.state in (StreamState.LIVE, StreamState.CONNECTING):
                # A subscription that never delivers is as stale as one that stopped.
                quiet = mono - (stream.last_update_mono or stream.started_mono)
                frozen = mono - (stream.last_ts_change_mono or stream.started_mono)
                if quiet >= self.stale_seconds or frozen >= self.stale_seconds:
                    stream.stale_since_mono = mono
                    why = "no update" if quiet >= self.stale_seconds else "exchange timestamp not advancing"
                    await self._fail(stream, STREAM_STALE,
                                     f"{why} for {max(quiet, frozen):.1f}s", StreamState.STALE, severity="warning")
            elif stream.status.state is StreamState.STALE and stream.stale_since_mono is not None:
                if mono - stream.stale_since_mono >= self.stale_seconds:
                    stream.stale_since_mono = mono
                    stream.status.reconnects += 1
                    logger.info("stale stream: reconnecting", extra={
                        "event": "stream_resubscribe", "exchange": stream.instrument.exchange.value,
                        "symbol": stream.instrument.symbol, "error_code": STREAM_STALE})
                    await self._reconnect(stream)

    async def heartbeat(self) -> None:
        if self.redis is None:
            return
        beat = {
            "ts": time.time(),
            "pid": os.getpid(),
            "venue": self.venue,
            "streams": {s.instrument.key: s.status.state.value for s in self.streams.values()},
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key(*HEARTBEAT_KEY_PARTS), json.dumps(beat), ex=max(30, int(self.stale_seconds * 3)))
        for stream in self.streams.values():
            pipe.hset(key("marketdata", "streams"), stream.instrument.key, json.dumps(stream.status.to_dict()))
        await pipe.execute()

    async def _set_state(self, stream: Stream, state: StreamState, code: str | None = None,
                         message: str | None = None) -> None:
        changed = stream.status.state is not state
        stream.status.state = state
        if state is StreamState.LIVE:
            stream.status.error_code = stream.status.error_message = None
        elif code:
            stream.status.error_code, stream.status.error_message = code, message
        if changed:
            stream.status.since_ms = now_ms()
            logger.info("stream %s", state.value, extra={
                "event": f"stream_{state.value}", "exchange": stream.instrument.exchange.value,
                "symbol": stream.instrument.symbol, "error_code": code})
        if self.redis is not None:
            await awrite_stream_status(self.redis, stream.status)

    async def _fail(self, stream: Stream, code: str, message: str, state: StreamState,
                    severity: str | None = None) -> None:
        """Record a failure; alert when the state or the error changes (not on every retry)."""
        news = stream.status.state is not state or stream.status.error_code != code
        await self._set_state(stream, state, code, message)
        if code in (ErrorCode.EXCHANGE_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.UPSTREAM_ERROR):
            await arecord_exchange_outcome(self.redis, stream.instrument.exchange, False, "stream", code, message)
        if not news:
            return
        instrument = stream.instrument
        logger.warning("stream problem: %s", message, extra={
            "event": "stream_error", "exchange": instrument.exchange.value, "symbol": instrument.symbol,
            "error_code": code})
        try:
            await self.publisher("engine_alert", {
                "severity": severity or ("error" if state is StreamState.ERROR else "warning"),
                "code": code,
                "message": f"{instrument.exchange} {instrument.symbol} ({instrument.type}): {message}",
                "exchange": instrument.exchange.value,
                "symbol": instrument.symbol,
                "type": instrument.type.value,
                "ts": now_ms(),
            })
        except Exception:
            logger.warning("engine_alert publish failed", extra={"event": "publish_failed"}, exc_info=True)


async def _wait_quietly(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def install_sequence_guard(client: Any, exchange: Exchange) -> None:
    """Bybit diffs carry a consecutive `u` that ccxt does not check: check it, and on a gap
    drop ccxt's book and fail the watch with InvalidNonce (as ccxt itself does for Binance).
    OKX books carry a checksum that ccxt does not check: see `_install_okx_checksum_guard`."""
    if exchange is Exchange.OKX and hasattr(client, "handle_order_book"):
        _install_okx_checksum_guard(client)
        return
    if exchange is not Exchange.BYBIT or not hasattr(client, "handle_order_book"):
        return
    original = client.handle_order_book
    last: dict[str, int] = {}

    def guarded(ws: Any, message: dict[str, Any]) -> Any:
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, dict):
            return original(ws, message)
        update_id = data.get("u")
        if isinstance(update_id, int):
            name = f"{getattr(ws, 'url', '')}|{message.get('topic', '')}"
            previous = last.get(name)
            if message.get("type") == "snapshot" or update_id == 1 or previous is None:
                last[name] = update_id
            elif update_id != previous + 1:
                last.pop(name, None)
                kind = "spot" if "spot" in str(getattr(ws, "url", "")) else "contract"
                symbol = client.safe_market(data.get("s"), None, None, kind)["symbol"]
                client.orderbooks.pop(symbol, None)
                ws.reject(ccxt.InvalidNonce(f"bybit {message.get('topic')}: update {update_id} after {previous}"),
                          f"orderbook:{symbol}")
                return None
            else:
                last[name] = update_id
        return original(ws, message)

    client.handle_order_book = guarded


_OKX_CHECKSUMMED = ("books", "books-l2-tbt", "books50-l2-tbt")


def _install_okx_checksum_guard(client: Any) -> None:
    """Check every OKX `books` message's checksum against the book it leaves; on a mismatch drop
    ccxt's book and fail the watch with InvalidNonce, so market data resyncs from a new snapshot."""
    original = client.handle_order_book
    books: dict[str, ChecksumBook] = {}

    def guarded(ws: Any, message: dict[str, Any]) -> Any:
        arg = message.get("arg") if isinstance(message, dict) else None
        data = message.get("data") if isinstance(message, dict) else None
        channel = arg.get("channel") if isinstance(arg, dict) else None
        if channel not in _OKX_CHECKSUMMED or not isinstance(data, list):
            return original(ws, message)
        assert isinstance(arg, dict)
        inst = str(arg.get("instId"))
        name = f"{getattr(ws, 'url', '')}|{channel}|{inst}"
        if message.get("action") == "snapshot":
            books[name] = ChecksumBook()
        book = books.get(name)
        if book is None:
            return original(ws, message)  # an update before our snapshot: ccxt has no book either
        for update in data:
            book.apply(update)
            expected = update.get("checksum") if isinstance(update, dict) else None
            if expected is None:
                continue
            computed = book.checksum()
            if int(expected) != computed:
                books.pop(name, None)
                symbol = client.safe_market(inst)["symbol"]
                message_hash = f"{channel}:{symbol}"
                client.orderbooks.pop(symbol, None)
                getattr(ws, "subscriptions", {}).pop(message_hash, None)  # resubscribe: a fresh snapshot
                ws.reject(ccxt.InvalidNonce(f"okx {channel} {inst}: checksum {expected}, book gives {computed}"),
                          message_hash)
                return None
        return original(ws, message)

    client.handle_order_book = guarded


def price_update_payload(book: OrderBook) -> dict[str, Any]:
    return {
        "exchange": book.exchange.value,
        "symbol": book.symbol,
        "type": book.type.value,
        "bid": float(book.best_bid) if book.best_bid is not None else None,
        "ask": float(book.best_ask) if book.best_ask is not None else None,
        "ts": book.ts,
        "recvTs": book.received_ts,  # when this process received the update (tick -> client latency)
        "venue": book.venue,
    }


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = [
    "MarketData",
    "backoff_delay",
    "register_book_listener",
    "register_instrument_source",
    "watched_instruments",
]

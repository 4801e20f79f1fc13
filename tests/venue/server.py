"""The venue emulator: one aiohttp server speaking Binance, Bybit and OKX from recorded data.

URLs are `/{exchange}/{original host}{original path}` (see `exchanges.connectivity.emulated_url`).
Each exchange module (`binance.py`, `bybit.py`, `okx.py`) owns a route table keyed by (method, path) and a
websocket handler; this module owns dispatch, pacing and replay, fault injection, the control
API and the background thread that lets sync and async tests share one emulator.

Control API (JSON):
- `POST   /_control/faults`  body `{"exchange": "binance", "kind": "http_status", "status": 429, ...}`
- `DELETE /_control/faults`  optional `?exchange=binance`
- `GET    /_control/state`   requests received, active websocket subscriptions, active faults, orders
- `GET    /_control/accounts/{exchange}/{api_key}`  an account's wallets, locked funds and positions
- `GET    /_control/requests`  every request received: method, path, wall ns (`?since=N` as below)
- `GET    /_control/arrivals`  order-create requests received: exchange, path, symbol, client id, wall ns
  (optional `?since=N` skips the first N, for a benchmark polling a long run)

OKX serves public market data only (no trading desk, no accounts).

Trading (see `tests.venue.trading`): each exchange module adds its signed order and account routes
and names its order-create routes in `order_routes`; every request to one of those is logged as an
`Arrival` (wall-clock ns, client order id) before any check, which is what the execution benchmark
and the "one order per leg" tests count. The replays move each market's matching book as they send.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.venue import recordings
from tests.venue.faults import Fault, FaultBook, FaultError, make_fault
from tests.venue.trading import FORCED_REJECT, TEST_ACCOUNTS, Arrival, LiveBooks, TradingDesk

Handler = Callable[[web.Request, "Venue"], Awaitable[web.StreamResponse]]
Render = Callable[["Subscription", recordings.Frame, int], str | None]

ON_END_CHOICES = ("close", "loop")
WS_KINDS = ("latency", "drop", "stall", "gap", "malformed")
HTTP_STALL_LIMIT_S = 300.0
TRADING_EXCHANGES = ("binance", "bybit")  # the others serve public market data only
_conn_ids = itertools.count(1)
_sub_ids = itertools.count(1)


def now_ms() -> int:
    return int(time.time() * 1000)


def dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


class ExchangeVenue(Protocol):
    """What an exchange module provides: REST routes, websocket sessions and its error bodies."""

    name: str
    routes: dict[tuple[str, str], Handler]

    async def websocket(self, request: web.Request, venue: Venue, host: str, path: str) -> web.StreamResponse: ...

    def error_response(self, status: int, body: str | None) -> web.Response: ...

    def not_found(self, method: str, path: str) -> web.Response: ...


@dataclass
class Subscription:
    """One stream being replayed on one websocket connection."""

    exchange: str
    market: str
    stream: str
    connection: Connection
    symbol: str = ""  # the market's exchange symbol, when this replay moves a matching book
    id: int = field(default_factory=lambda: next(_sub_ids))
    sent: int = 0
    skipped: int = 0
    loops: int = 0
    state: str = "starting"  # starting | streaming | stalled | ended | closed
    time_anchor_ms: int = 0  # wall-clock ms the first replayed message is stamped with (0: not shifted)
    recorded_first_ms: int = 0
    started_at: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = None
    scratch: dict[str, Any] = field(default_factory=dict)  # per-exchange replay state (e.g. a derived book)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exchange": self.exchange,
            "market": self.market,
            "stream": self.stream,
            "connection": self.connection.id,
            "path": self.connection.path,
            "sent": self.sent,
            "skipped": self.skipped,
            "loops": self.loops,
            "state": self.state,
            "time_anchor_ms": self.time_anchor_ms,
            "recorded_first_ms": self.recorded_first_ms,
        }


class Connection:
    """A websocket client connection; sends are serialised so frames never interleave."""

    def __init__(self, ws: web.WebSocketResponse, exchange: str, host: str, path: str) -> None:
        self.id = next(_conn_ids)
        self.ws = ws
        self.exchange = exchange
        self.host = host
        self.path = path
        self.subscriptions: dict[str, Subscription] = {}
        self.meta: dict[str, Any] = {}  # per-exchange session facts (market, combined stream, ...)
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> bool:
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
            return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


class Venue:
    """Shared state and behaviour of the emulator, independent of how it is hosted."""

    def __init__(
        self,
        data_dir: Path,
        *,
        speed: float = 1.0,
        shift_timestamps: bool = True,
        on_end: str = "close",
        accounts: dict[str, dict[str, str]] | None = None,
        funds: dict[str, Any] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if on_end not in ON_END_CHOICES:
            raise ValueError(f"on_end must be one of {ON_END_CHOICES}")
        self.data = recordings.load(Path(data_dir))
        self.speed = speed
        self.shift_timestamps = shift_timestamps
        self.on_end = on_end
        self.faults = FaultBook()
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._request_ns: list[int] = []  # wall-clock ns each request arrived, parallel to _requests
        self._requests_lock = threading.Lock()
        self.connections: set[Connection] = set()
        from tests.venue.binance import BinanceVenue
        from tests.venue.bybit import BybitVenue
        from tests.venue.okx import OkxVenue

        self.exchanges: dict[str, ExchangeVenue] = {
            "binance": BinanceVenue(self.data), "bybit": BybitVenue(self.data), "okx": OkxVenue(self.data),
        }
        self.books = LiveBooks(self.data)
        accounts = TEST_ACCOUNTS if accounts is None else accounts
        self.trading: dict[str, TradingDesk] = {
            name: TradingDesk(name, self.data, self.books, accounts.get(name, {}), _funds_for(funds, name))
            for name in TRADING_EXCHANGES
        }

    # --- bookkeeping -------------------------------------------------------------------------------------------

    def log_request(self, method: str, path: str, query: dict[str, str], at_ns: int | None = None) -> None:
        with self._requests_lock:
            self._requests.append((method, path, query))
            self._request_ns.append(at_ns or time.time_ns())

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._requests_lock:
            return list(self._requests)

    def subscriptions(self) -> list[Subscription]:
        return [s for c in list(self.connections) for s in list(c.subscriptions.values())]

    def state(self) -> dict[str, Any]:
        return {
            "speed": self.speed,
            "shift_timestamps": self.shift_timestamps,
            "on_end": self.on_end,
            "requests": [{"method": m, "path": p, "query": q} for m, p, q in self.requests],
            "subscriptions": [s.as_dict() for s in self.subscriptions()],
            "faults": self.faults.active(),
            "orders": {name: sum(len(o) for o in desk.orders.values()) for name, desk in self.trading.items()},
            "arrivals": {name: len(desk.arrivals) for name, desk in self.trading.items()},
        }

    # --- HTTP --------------------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/_control/faults", self._post_fault)
        app.router.add_delete("/_control/faults", self._delete_faults)
        app.router.add_get("/_control/state", self._get_state)
        app.router.add_get("/_control/accounts/{exchange}/{api_key}", self._get_account)
        app.router.add_get("/_control/arrivals", self._get_arrivals)
        app.router.add_get("/_control/requests", self._get_requests)
        app.router.add_route("*", "/{exchange}/{host}/{path:.*}", self._dispatch)
        app.on_shutdown.append(self._close_connections)
        return app

    async def _close_connections(self, _app: web.Application) -> None:
        for connection in list(self.connections):
            for sub in list(connection.subscriptions.values()):
                if sub.task:
                    sub.task.cancel()
            await connection.close()

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            params = await request.json()
            exchange = params.pop("exchange")
            kind = params.pop("kind")
            if exchange not in self.exchanges:
                raise FaultError(f"unknown exchange {exchange!r}")
            fault = self.faults.add(make_fault(exchange, kind, **params))
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(fault.as_dict(), status=201)

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.faults.clear(request.query.get("exchange"))
        return web.json_response({"faults": self.faults.active()})

    async def _get_state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _get_account(self, request: web.Request) -> web.Response:
        desk = self.trading.get(request.match_info["exchange"])
        account = desk.accounts.get(request.match_info["api_key"]) if desk else None
        if account is None:
            return web.json_response({"error": "no such account"}, status=404)
        return web.json_response(account.snapshot())

    async def _get_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0") or 0)
        with self._requests_lock:
            rows = list(zip(self._requests[since:], self._request_ns[since:], strict=True))
        return web.json_response([{"method": m, "path": p, "wallNs": ns} for (m, p, _q), ns in rows])

    async def _get_arrivals(self, request: web.Request) -> web.Response:
        arrivals = sorted((a for desk in self.trading.values() for a in desk.arrivals), key=lambda a: a.wall_ns)
        since = int(request.query.get("since", "0") or 0)
        return web.json_response([
            {"exchange": a.exchange, "path": a.path, "symbol": a.symbol, "clientOrderId": a.client_id,
             "wallNs": a.wall_ns} for a in arrivals[since:]
        ])

    async def _log_arrival(self, request: web.Request, exchange: str, path: str, at_ns: int) -> None:
        """Log an order-create request (client id and symbol read from its query or body)."""
        params: dict[str, Any] = dict(request.query)
        text = await request.text() if request.body_exists else ""
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                params.update(json.loads(text))
        elif text:
            params.update(parse_qsl(text, keep_blank_values=True))
        client_id = params.get("newClientOrderId") or params.get("orderLinkId") or ""
        self.trading[exchange].arrivals.append(
            Arrival(exchange, path, str(params.get("symbol", "")), str(client_id), at_ns)
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        arrived_ns = time.time_ns()
        exchange_name = request.match_info["exchange"]
        host = request.match_info["host"]
        path = "/" + request.match_info["path"]
        self.log_request(request.method, request.path, dict(request.query), arrived_ns)
        exchange = self.exchanges.get(exchange_name)
        if exchange is None:
            return web.json_response({"error": f"venue emulator does not serve {exchange_name!r}"}, status=404)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await exchange.websocket(request, self, host, path)
        is_order = (request.method, path) in getattr(exchange, "order_routes", ())
        if is_order:
            await self._log_arrival(request, exchange_name, path, arrived_ns)
        for fault in self.faults.take_http(exchange_name, f"{host}{path}", order=is_order):
            response = await self._apply_http_fault(fault, exchange, request)
            if response is not None:
                return response
        handler = exchange.routes.get((request.method, path))
        if handler is None:
            return exchange.not_found(request.method, path)
        return await handler(request, self)

    async def _apply_http_fault(
        self, fault: Fault, exchange: ExchangeVenue, request: web.Request
    ) -> web.StreamResponse | None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.ms / 1000)
            return None
        if fault.kind == "http_status":
            return exchange.error_response(fault.status, fault.body)
        if fault.kind == "reject_order":
            if fault.body == "rate_limit":
                return exchange.error_response(429, None)
            request[FORCED_REJECT] = fault.body or "insufficient_balance"  # refused after the auth check
            return None
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"lastUpdateId":1,"bids":[["1.0"', content_type="application/json")
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client: the connection is already reset
        if fault.kind == "stall":
            deadline = time.monotonic() + HTTP_STALL_LIMIT_S
            while time.monotonic() < deadline and request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
            return web.Response(status=504)
        return None

    # --- websockets ---------------------------------------------------------------------------------------------

    async def open_websocket(self, request: web.Request, exchange: str, host: str, path: str) -> Connection:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = Connection(ws, exchange, host, path)
        self.connections.add(connection)
        return connection

    async def serve_messages(
        self, connection: Connection, on_text: Callable[[Connection, str], Awaitable[None]]
    ) -> web.WebSocketResponse:
        """Read client frames until the socket closes, then stop its replays."""
        try:
            async for message in connection.ws:
                if message.type == WSMsgType.TEXT:
                    await on_text(connection, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            for sub in list(connection.subscriptions.values()):
                self.stop_subscription(sub, "closed")
            self.connections.discard(connection)
        return connection.ws

    def start_subscription(
        self,
        connection: Connection,
        market: str,
        stream: str,
        frames: list[recordings.Frame],
        render: Render,
        *,
        can_loop: bool = True,
        symbol: str = "",
    ) -> Subscription:
        """(Re)start replaying `frames` from the beginning for `stream` on this connection.

        `can_loop=False` for streams that cannot start over on the same socket (Binance diff depth:
        replayed ids would go backwards and clients would silently drop everything), so "loop"
        closes those at the end like "close", forcing the client to resync from a new snapshot.
        """
        previous = connection.subscriptions.get(stream)
        if previous is not None:
            self.stop_subscription(previous, "closed")
        sub = Subscription(connection.exchange, market, stream, connection, symbol=symbol)
        connection.subscriptions[stream] = sub
        sub.task = asyncio.get_running_loop().create_task(self._replay(sub, frames, render, can_loop))
        return sub

    def stop_subscription(self, sub: Subscription, state: str) -> None:
        sub.state = state
        if sub.task is not None and sub.task is not asyncio.current_task():
            sub.task.cancel()
        if sub.connection.subscriptions.get(sub.stream) is sub:
            del sub.connection.subscriptions[sub.stream]

    async def _replay(self, sub: Subscription, frames: list[recordings.Frame], render: Render, can_loop: bool) -> None:
        connection = sub.connection
        try:
            while True:
                sub.state = "streaming"
                sub.scratch.clear()
                for index, frame in enumerate(frames):
                    if index:
                        await asyncio.sleep(max(0.0, (frame.at - frames[index - 1].at) / self.speed))
                    if not await self._send_frame(sub, frame, index, render):
                        return
                if self.on_end != "loop" or not can_loop:
                    break
                sub.loops += 1
            sub.state = "ended"
            # The recording is over: close, so the client has to reconnect and resync from a fresh replay.
            await connection.close()
        except asyncio.CancelledError:
            raise
        finally:
            if sub.state in ("streaming", "starting"):
                sub.state = "closed"

    async def _send_frame(self, sub: Subscription, frame: recordings.Frame, index: int, render: Render) -> bool:
        """Send one recorded frame through the fault gauntlet; False when the replay must stop."""
        connection = sub.connection
        broken = False
        for fault in self.faults.take_ws(sub.exchange, sub.stream, sub.sent, WS_KINDS):
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "drop":
                sub.state = "dropped"
                await connection.close()
                return False
            elif fault.kind == "stall":
                sub.state = "stalled"
                while not connection.ws.closed:
                    await asyncio.sleep(0.05)
                return False
            elif fault.kind == "gap":
                sub.skipped += 1
                render(sub, frame, index)  # keep derived state in step with what the exchange knows
                self._advance_book(sub, index)
                return True
            elif fault.kind == "malformed":
                broken = True
        # Render exactly once per frame: derived streams (Bybit top-N) keep state between frames.
        text = render(sub, frame, index)
        self._advance_book(sub, index)
        if text is None:
            return True
        if broken:
            # An extra, truncated frame just before the real one: invalid JSON, nothing lost.
            await connection.send(text[: max(1, len(text) // 2)])
        if not await connection.send(text):
            return False
        sub.sent += 1
        return True

    def _advance_book(self, sub: Subscription, index: int) -> None:
        """The exchange has moved on to this frame: so does the book orders match against."""
        if sub.symbol:
            self.books.advance(sub.exchange, sub.market, sub.symbol, index)

    def anchor_time(self, sub: Subscription, recorded_first_ms: int) -> None:
        """Start the subscription's clock: its first message will read as 'now'."""
        sub.recorded_first_ms = recorded_first_ms
        sub.time_anchor_ms = now_ms() if self.shift_timestamps else 0

    def shifted(self, sub: Subscription, recorded_ms: int) -> int:
        """A recorded exchange time moved onto the replay clock.

        At speed 1 this is a constant shift (recorded intervals kept); at other speeds the intervals
        scale with the replay, so timestamps stay the time the message is sent and never run ahead
        of the wall clock (stale-stream detection compares them to it).
        """
        if not sub.time_anchor_ms:
            return recorded_ms
        return sub.time_anchor_ms + round((recorded_ms - sub.recorded_first_ms) / self.speed)


def _funds_for(funds: dict[str, Any] | None, exchange: str) -> dict[str, str] | None:
    """`funds` is `{asset: amount}` for every account, or `{exchange: {asset: amount}}`."""
    if funds and all(isinstance(v, dict) for v in funds.values()):
        return funds.get(exchange)
    return funds


class VenueEmulator:
    """The emulator on 127.0.0.1 in a background thread with its own event loop.

    `speed` scales the recorded inter-arrival times (2.0 = twice as fast). `shift_timestamps`
    (default on) moves Binance `E`/`T` and Bybit `ts`/`cts` to the present (the first message of a
    subscription reads "now", later ones keep the recorded spacing divided by `speed`), because
    stale-stream detection compares them to the clock; off, they are sent as recorded. `on_end="close"` closes
    a websocket when its recording ends (clients must reconnect and resync); "loop" starts over.
    """

    def __init__(
        self,
        data_dir: Path | str,
        speed: float = 1.0,
        shift_timestamps: bool = True,
        on_end: str = "close",
        port: int = 0,
        host: str = "127.0.0.1",
        accounts: dict[str, dict[str, str]] | None = None,
        funds: dict[str, Any] | None = None,
    ) -> None:
        """`accounts`: `{exchange: {api_key: secret}}` (default TEST_ACCOUNTS); `funds`: every account's
        starting `{asset: amount}`, or `{exchange: {asset: amount}}` (default DEFAULT_FUNDS)."""
        self.venue = Venue(
            Path(data_dir), speed=speed, shift_timestamps=shift_timestamps, on_end=on_end, accounts=accounts,
            funds=funds,
        )
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port: int = 0

    @property
    def speed(self) -> float:
        return self.venue.speed

    @speed.setter
    def speed(self, value: float) -> None:
        """Change the replay speed of running and future subscriptions (from the next message on)."""
        if value <= 0:
            raise ValueError("speed must be > 0")
        self.venue.speed = value

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("venue emulator is not running")
        return f"http://{self._host}:{self.port}"

    def start(self) -> VenueEmulator:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="venue-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=15):
            raise RuntimeError("venue emulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"venue emulator failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
            return
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(
            self.venue.build_app(), handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self._ready.set()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self.port = 0

    def __enter__(self) -> VenueEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- the Python control API ----------------------------------------------------------------------------------

    def inject(self, exchange: str, kind: str, **params: Any) -> Fault:
        """Add a fault (see tests.venue.faults for kinds and parameters)."""
        if exchange not in self.venue.exchanges:
            raise FaultError(f"unknown exchange {exchange!r}")
        return self.venue.faults.add(make_fault(exchange, kind, **params))

    def clear_faults(self, exchange: str | None = None) -> None:
        self.venue.faults.clear(exchange)

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return self.venue.requests

    def requests_to(self, fragment: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if fragment in r[1]]

    def state(self) -> dict[str, Any]:
        """Same as GET /_control/state (taken on the server loop, so it is consistent)."""
        loop = self._loop
        if loop is None:
            return self.venue.state()

        async def snapshot() -> dict[str, Any]:
            return self.venue.state()

        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=5)

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self.state()["subscriptions"])

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server loop (the trading state's only writer) and return its result."""
        loop = self._loop
        if loop is None:
            return fn()

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=5)

    def reject_orders(self, exchange: str, reason: str = "insufficient_balance", count: int | None = 1,
                      path: str | None = None) -> Fault:
        """Refuse the next `count` orders (None: until cleared) with the exchange's own error for `reason`."""
        return self.inject(exchange, "reject_order", body=reason, count=count, path=path)

    def account(self, exchange: str, api_key: str | None = None) -> dict[str, Any]:
        """An account's wallets, locked funds and positions (strings); the first test account by default."""
        desk = self.venue.trading[exchange]
        key = api_key or next(iter(desk.accounts))
        return dict(self.on_loop(lambda: desk.accounts[key].snapshot()))

    def orders(self, exchange: str, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every order an account placed, oldest first."""
        desk = self.venue.trading[exchange]
        key = api_key or next(iter(desk.accounts))

        def rows() -> list[dict[str, Any]]:
            return [{"orderId": o.order_id, "clientOrderId": o.client_id, "market": o.market, "symbol": o.symbol,
                     "side": o.side, "type": o.type, "status": o.status, "qty": str(o.qty), "filled": str(o.filled),
                     "cost": str(o.cost), "fee": str(o.fee), "feeAsset": o.fee_asset} for o in desk.orders[key]]

        return list(self.on_loop(rows))

    def arrivals(self, exchange: str | None = None) -> list[Arrival]:
        """Order-create requests received (also those refused), oldest first."""
        names = [exchange] if exchange else list(self.venue.trading)
        return list(self.on_loop(lambda: [a for n in names for a in self.venue.trading[n].arrivals]))

    def iter_frames(self, exchange: str, market: str, symbol: str) -> Iterator[recordings.Frame]:
        """The recorded frames a subscription to this book replays (for tests that count)."""
        if exchange == "binance":
            yield from self.venue.data.binance_books[(market, symbol)].frames
        elif exchange == "okx":
            yield from self.venue.data.okx_books[symbol].frames
        else:
            yield from self.venue.data.bybit_books[(market, symbol)].frames

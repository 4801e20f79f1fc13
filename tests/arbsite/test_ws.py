"""`/ws` against the real ASGI application and the real channels_redis layer.

Absence is checked without timers: after the event a client must not get, a marker event
it must get is published; the next message it receives has to be the marker (a channel's
messages arrive in the order they were sent).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from redis.exceptions import RedisError

from arbsite import events, metrics
from arbsite.asgi import application
from arbsite.consumers import CLOSE_UNAUTHENTICATED
from arbsite.redis_client import get_redis

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")
WAIT = 5.0


@pytest.fixture(autouse=True)
def own_channel_layer(settings: Any) -> Iterator[str]:
    """A channel-layer prefix of this test's own, so no other test (or run) shares its groups."""
    prefix = f"arbsite-test-ws-{uuid.uuid4().hex[:10]}"
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    yield prefix
    client = get_redis()
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


@pytest.fixture
def browser(operator: Any) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def session_cookie(browser: Client) -> bytes:
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={browser.cookies[name].value}".encode()


@pytest.fixture
def token(operator: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=operator).key


@pytest.fixture
async def connect(session_cookie: bytes) -> AsyncIterator[Callable[..., Awaitable[WebsocketCommunicator]]]:
    """Opens authenticated connections and closes them all at the end."""
    opened: list[WebsocketCommunicator] = []

    async def _connect(path: str = "/ws/") -> WebsocketCommunicator:
        ws = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"cookie", session_cookie)])
        connected, _ = await ws.connect(timeout=WAIT)
        assert connected
        opened.append(ws)
        return ws

    yield _connect
    for ws in opened:
        try:
            await ws.disconnect()
        except (TimeoutError, asyncio.CancelledError, RedisError):
            pass  # a failed wait already cancelled the app; the test's own failure says why


async def send(ws: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json_to(message)
    return await ws.receive_json_from(timeout=WAIT)


async def subscribe(ws: WebsocketCommunicator, **lists: list[str]) -> dict[str, Any]:
    reply = await send(ws, {"action": "subscribe", **lists})
    assert reply["event"] == "subscribed", reply
    return reply["data"]


def price(exchange: str, symbol: str, market_type: str = "spot", bid: float = 68000.1) -> dict[str, Any]:
    return {
        "exchange": exchange,
        "symbol": symbol,
        "type": market_type,
        "bid": bid,
        "ask": bid + 0.1,
        "ts": events.now_ms(),
    }


async def marker(text: str) -> dict[str, Any]:
    """An alert every connection receives, published after the events it must not get."""
    data = {"severity": "info", "code": "TEST_MARKER", "message": text, "ts": events.now_ms()}
    assert await events.apublish("engine_alert", data)
    return data


async def next_is_marker(ws: WebsocketCommunicator, text: str) -> None:
    got = await ws.receive_json_from(timeout=WAIT)
    assert got == {
        "event": "engine_alert",
        "data": {"severity": "info", "code": "TEST_MARKER", "message": text, "ts": got["data"]["ts"]},
    }, got


async def eventually(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await sync_to_async(check)()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


# -- authentication -----------------------------------------------------------


async def test_it_refuses_an_unauthenticated_connection_with_4401() -> None:
    ws = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN])
    connected, _ = await ws.connect(timeout=WAIT)
    assert connected  # accepted only to say why, then closed
    reply = await ws.receive_json_from(timeout=WAIT)
    assert reply["event"] == "error"
    assert reply["data"]["code"] == "AUTHENTICATION_REQUIRED"
    closed = await ws.receive_output(timeout=WAIT)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await ws.wait()


async def test_it_refuses_a_wrong_token() -> None:
    ws = WebsocketCommunicator(application, "/ws?token=not-a-token", headers=[ORIGIN])
    await ws.connect(timeout=WAIT)
    assert (await ws.receive_json_from(timeout=WAIT))["data"]["code"] == "AUTHENTICATION_REQUIRED"
    assert (await ws.receive_output(timeout=WAIT))["code"] == CLOSE_UNAUTHENTICATED
    await ws.wait()


async def test_it_refuses_a_foreign_origin(session_cookie: bytes) -> None:
    ws = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", b"https://evil.example"), (b"cookie", session_cookie)]
    )
    connected, _ = await ws.connect(timeout=WAIT)
    assert not connected


async def test_it_accepts_a_session(connect: Callable[..., Awaitable[WebsocketCommunicator]]) -> None:
    ws = await connect("/ws/")
    assert (await send(ws, {"action": "ping"}))["event"] == "pong"


async def test_it_accepts_a_token_on_ws_without_slash(token: str) -> None:
    ws = WebsocketCommunicator(application, f"/ws?token={token}", headers=[ORIGIN])
    connected, _ = await ws.connect(timeout=WAIT)
    assert connected
    reply = await send(ws, {"action": "ping"})
    assert reply["event"] == "pong"
    assert abs(reply["data"]["ts"] - events.now_ms()) < 60_000
    await ws.disconnect()


async def test_it_refuses_the_token_of_an_inactive_user(operator: Any, token: str) -> None:
    operator.is_active = False
    await sync_to_async(operator.save)()
    ws = WebsocketCommunicator(application, f"/ws?token={token}", headers=[ORIGIN])
    await ws.connect(timeout=WAIT)
    assert (await ws.receive_json_from(timeout=WAIT))["data"]["code"] == "AUTHENTICATION_REQUIRED"
    await ws.wait()


async def test_logging_out_closes_the_sessions_sockets_only(
    connect: Callable[..., Awaitable[WebsocketCommunicator]], browser: Client, token: str
) -> None:
    tab1, tab2 = await connect(), await connect()
    script = WebsocketCommunicator(application, f"/ws?token={token}", headers=[ORIGIN])
    assert (await script.connect(timeout=WAIT))[0]

    response = await sync_to_async(browser.post)("/api/auth/logout")
    assert response.status_code == 200

    for ws in (tab1, tab2):
        reply = await ws.receive_json_from(timeout=WAIT)
        assert reply == {"event": "error", "data": {"code": "AUTHENTICATION_REQUIRED", "message": "Logged out."}}
        assert (await ws.receive_output(timeout=WAIT))["code"] == CLOSE_UNAUTHENTICATED
    # The token connection is not the session's: it stays.
    assert (await send(script, {"action": "ping"}))["event"] == "pong"
    await script.disconnect()


# -- filtering ----------------------------------------------------------------


async def test_it_delivers_only_the_subscribed_symbol(connect: Callable[..., Awaitable[WebsocketCommunicator]]) -> None:
    ws = await connect()
    data = await subscribe(ws, symbols=["binance:BTCUSDT"])
    assert data == {"exchanges": [], "symbols": ["binance:BTCUSDT"], "pairs": [], "plans": []}

    await events.apublish("price_update", price("bybit", "BTCUSDT", "linear"))
    await events.apublish("price_update", price("binance", "ETHUSDT"))
    wanted = price("binance", "BTCUSDT")
    await events.apublish("price_update", wanted)
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "price_update", "data": wanted}
    await marker("after-btc")
    await next_is_marker(ws, "after-btc")


async def test_it_filters_by_market_type_when_the_symbol_names_one(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    ws = await connect()
    await subscribe(ws, symbols=["bybit:linear:btcusdt"])
    await events.apublish("price_update", price("bybit", "BTCUSDT", "spot"))
    linear = price("bybit", "BTCUSDT", "linear")
    await events.apublish("price_update", linear)
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "price_update", "data": linear}


async def test_a_pair_subscription_gets_only_its_opportunities(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    ws = await connect()
    await subscribe(ws, pairs=["bybit_binance_btc"])
    await events.apublish("opportunity", {"pairId": "okx_bitget_eth", "spread": 1.0, "spreadPercent": 0.01, "ts": 1})
    await events.apublish("price_update", price("binance", "BTCUSDT"))
    mine = {"pairId": "bybit_binance_btc", "spread": 0.5, "spreadPercent": 0.0007, "ts": 2}
    await events.apublish("opportunity", mine)
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "opportunity", "data": mine}
    await marker("after-opportunity")
    await next_is_marker(ws, "after-opportunity")


async def test_star_subscribes_to_everything_of_a_kind_once(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    ws = await connect()
    # The exchange and the star overlap: each event must still arrive once.
    await subscribe(ws, symbols=["*", "binance:BTCUSDT"], exchanges=["binance"])
    first, second = price("bybit", "ETHUSDT", "linear"), price("binance", "BTCUSDT")
    await events.apublish("price_update", first)
    await events.apublish("price_update", second)
    await events.apublish("opportunity", {"pairId": "p1", "spread": 1.0, "spreadPercent": 0.1, "ts": 3})
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "price_update", "data": first}
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "price_update", "data": second}
    await marker("after-star")
    await next_is_marker(ws, "after-star")


async def test_plan_subscription_gets_twap_progress(connect: Callable[..., Awaitable[WebsocketCommunicator]]) -> None:
    ws = await connect()
    await subscribe(ws, plans=["twap_001"])
    progress = {
        "planId": "twap_001",
        "executed": 0.004,
        "remaining": 0.006,
        "slicesDone": 4,
        "slicesTotal": 10,
        "state": "running",
        "ts": 5,
    }
    await events.apublish("twap_progress", {**progress, "planId": "twap_002"})
    await events.apublish("twap_progress", progress)
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "twap_progress", "data": progress}


async def test_unsubscribe_stops_delivery(connect: Callable[..., Awaitable[WebsocketCommunicator]]) -> None:
    ws = await connect()
    await subscribe(ws, exchanges=["binance", "bybit"], pairs=["*"])
    reply = await send(ws, {"action": "unsubscribe", "exchanges": ["binance"], "pairs": ["*"]})
    assert reply == {"event": "unsubscribed", "data": {"exchanges": ["bybit"], "symbols": [], "pairs": [], "plans": []}}
    await events.apublish("price_update", price("binance", "BTCUSDT"))
    await events.apublish("opportunity", {"pairId": "p1", "spread": 1.0, "spreadPercent": 0.1, "ts": 3})
    bybit = price("bybit", "BTCUSDT", "linear")
    await events.apublish("price_update", bybit)
    assert await ws.receive_json_from(timeout=WAIT) == {"event": "price_update", "data": bybit}


async def test_everyone_gets_engine_alerts_from_sync_publishers(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    quiet, busy = await connect(), await connect("/ws")
    await subscribe(busy, exchanges=["okx"])
    alert = {"severity": "warning", "code": "RISK_REJECTED", "message": "slippage above limit", "pairId": "x", "ts": 9}
    # The Celery path: sync code in a worker thread, waiting (briefly) for the layer.
    assert await sync_to_async(events.publish)("engine_alert", alert)
    for ws in (quiet, busy):
        assert await ws.receive_json_from(timeout=WAIT) == {"event": "engine_alert", "data": alert}


async def test_order_events_reach_exchange_and_pair_subscribers(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    by_exchange, by_pair = await connect(), await connect()
    await subscribe(by_exchange, exchanges=["bybit"])
    await subscribe(by_pair, pairs=["bybit_binance_btc"])
    filled = {
        "exchange": "bybit",
        "orderId": "A123",
        "price": 68000.1,
        "qty": 0.001,
        "paper": True,
        "pairId": "bybit_binance_btc",
        "ts": 7,
    }
    # Sync publish from the event loop's own thread schedules and returns at once.
    assert events.publish("order_filled", filled)
    for ws in (by_exchange, by_pair):
        assert await ws.receive_json_from(timeout=WAIT) == {"event": "order_filled", "data": filled}


async def test_it_records_websocket_latency(
    settings: Any, connect: Callable[..., Awaitable[WebsocketCommunicator]]
) -> None:
    settings.WS_LATENCY_SAMPLE_EVERY = 1
    ws = await connect()
    await events.apublish("engine_alert", {"severity": "info", "code": "X", "message": "m", "ts": 1})
    await ws.receive_json_from(timeout=WAIT)
    samples = await eventually(lambda: metrics.samples("ws_event_latency_ms"))
    assert all(s >= 0 for s in samples)


# -- client messages ----------------------------------------------------------


async def test_client_events_are_logged_and_not_rebroadcast(
    connect: Callable[..., Awaitable[WebsocketCommunicator]], caplog: pytest.LogCaptureFixture
) -> None:
    sender, watcher = await connect(), await connect()
    await subscribe(watcher, exchanges=["*"], symbols=["*"], pairs=["*"], plans=["*"])
    caplog.set_level(logging.INFO, logger="arbsite.client")
    await sender.send_json_to(
        {
            "action": "client_event",
            "event": "arbitrage_triggered",
            "data": {"pairId": "bybit_binance_btc", "spreadPercent": 0.12, "note": "x" * 500, "nested": {"a": 1}},
        }
    )
    # No reply to a client event: the next thing the sender hears is its pong.
    assert (await send(sender, {"action": "ping"}))["event"] == "pong"
    await marker("after-client-event")
    await next_is_marker(watcher, "after-client-event")
    await next_is_marker(sender, "after-client-event")

    records = [r for r in caplog.records if getattr(r, "event", None) == "client_event"]
    assert len(records) == 1
    record: Any = records[0]
    assert record.user == "olivia"
    assert record.pairId == "bybit_binance_btc"
    assert record.detail["name"] == "arbitrage_triggered"
    assert len(record.detail["data"]["note"]) == 200
    assert record.detail["data"]["nested"] == '{"a": 1}'


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ("not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"action": "dance"}, "unknown action"),
        ({}, "unknown action"),
        ({"action": "subscribe", "exchanges": "binance"}, "must be a list"),
        ({"action": "subscribe", "exchanges": ["kraken"]}, "unknown exchange"),
        ({"action": "subscribe", "exchanges": [3]}, "non-empty string"),
        ({"action": "subscribe", "symbols": ["BTCUSDT"]}, "exchange:SYMBOL"),
        ({"action": "subscribe", "symbols": ["binance:futures:BTCUSDT"]}, "spot or linear"),
        ({"action": "subscribe", "symbols": ["binance:BTC/USDT"]}, "valid symbol"),
        ({"action": "subscribe", "pairs": ["a b"]}, "is not an id"),
        ({"action": "subscribe", "pairs": ["x" * 65]}, "is not an id"),
        ({"action": "subscribe", "pair": ["p1"]}, "unknown field"),
        ({"action": "subscribe", "pairs": [f"p{i}" for i in range(201)]}, "at most 200"),
        ({"action": "client_event", "event": "order_filled", "data": {}}, "must be one of"),
        ({"action": "client_event", "event": "connection_change", "data": [1]}, "must be an object"),
        ({"action": "client_event", "event": "connection_change", "data": {"x": "y" * 3000}}, "larger than"),
    ],
)
async def test_bad_messages_get_an_error_event_and_keep_the_connection(
    connect: Callable[..., Awaitable[WebsocketCommunicator]], message: Any, fragment: str
) -> None:
    ws = await connect()
    if isinstance(message, str):
        await ws.send_to(text_data=message)
    else:
        await ws.send_json_to(message)
    reply = await ws.receive_json_from(timeout=WAIT)
    assert reply["event"] == "error"
    assert reply["data"]["code"] == "VALIDATION_ERROR"
    assert fragment in reply["data"]["message"]
    assert (await send(ws, {"action": "ping"}))["event"] == "pong"


async def test_binary_frames_are_refused_politely(connect: Callable[..., Awaitable[WebsocketCommunicator]]) -> None:
    ws = await connect()
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=WAIT))["data"]["code"] == "VALIDATION_ERROR"


async def test_the_subscription_limit_counts_across_messages(
    connect: Callable[..., Awaitable[WebsocketCommunicator]],
) -> None:
    ws = await connect()
    data = await subscribe(ws, pairs=[f"p{i}" for i in range(150)])
    assert len(data["pairs"]) == 150
    reply = await send(ws, {"action": "subscribe", "plans": [f"t{i}" for i in range(51)]})
    assert reply["event"] == "error"
    assert "at most 200" in reply["data"]["message"]
    # Nothing of the refused request was applied.
    data = await subscribe(ws, plans=["t1"])
    assert data["plans"] == ["t1"]

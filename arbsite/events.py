"""Websocket events: typed payloads and the one `publish` every producer uses.

A producer calls `publish(event, data)` (sync code: Celery tasks, Django views) or
`await apublish(event, data)` (the market-data process). The event is delivered to the
Channels groups its data names, so each browser receives only what it subscribed to
(see `arbsite.consumers` for the client protocol):

    exchange.<exchange>                      data has `exchange`     (wildcard: exchange.all)
    symbol.<exchange>.<SYMBOL>               data has `symbol`       (wildcard: symbol.all)
    instrument.<exchange>.<type>.<SYMBOL>    data has `symbol` and a market `type` (spot|linear)
    pair.<pairId>                            data has `pairId`       (wildcard: pair.all)
    plan.<planId>                            data has `planId`       (wildcard: plan.all)
    alerts                                   every engine_alert (every connection is in it)

Publishing never raises into the caller and never waits long: a slow or absent Redis costs
the caller at most `WS_PUBLISH_TIMEOUT` seconds, and the failure is logged and counted
(`ws_publish_failed`). Events carry no secrets by construction; `_clean` drops any key that
looks like one anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, NotRequired, TypedDict, get_args

from django.conf import settings

logger = logging.getLogger("arbsite.events")

EventName = Literal[
    "price_update",
    "opportunity",
    "order_submitted",
    "order_filled",
    "order_failed",
    "twap_progress",
    "engine_alert",
]
EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))

# The consumer's handler for `{"type": ...}` messages sent through the channel layer.
MESSAGE_TYPE = "desk.event"

ALERTS_GROUP = "alerts"
WILDCARD = "all"
MARKET_TYPES = ("spot", "linear")


class PriceUpdate(TypedDict):
    exchange: str
    symbol: str
    bid: float
    ask: float
    ts: int
    type: NotRequired[str]  # market type: spot | linear
    venue: NotRequired[str]  # live | emulator


class Opportunity(TypedDict):
    pairId: str
    spread: float
    spreadPercent: float
    ts: int


class OrderSubmitted(TypedDict):
    exchange: str
    orderId: str
    symbol: str
    side: str
    qty: float
    ts: int
    paper: NotRequired[bool]
    pairId: NotRequired[str]


class OrderFilled(TypedDict):
    exchange: str
    orderId: str
    price: float
    qty: float
    ts: int
    paper: NotRequired[bool]
    pairId: NotRequired[str]


class OrderFailed(TypedDict):
    exchange: str
    orderId: str
    code: str
    message: str
    ts: int
    paper: NotRequired[bool]
    pairId: NotRequired[str]


class TwapProgress(TypedDict):
    planId: str
    executed: float
    remaining: float
    slicesDone: int
    slicesTotal: int
    state: str
    ts: int


class EngineAlert(TypedDict):
    severity: Literal["info", "warning", "error", "critical"]
    code: str
    message: str
    pairId: NotRequired[str]
    exchange: NotRequired[str]
    symbol: NotRequired[str]
    ts: int


EventData = PriceUpdate | Opportunity | OrderSubmitted | OrderFilled | OrderFailed | TwapProgress | EngineAlert


class Envelope(TypedDict):
    """What a browser receives."""

    event: str
    data: dict[str, Any]


class LayerMessage(TypedDict):
    """What travels through the channel layer (the envelope plus delivery bookkeeping)."""

    type: str
    id: str
    event: str
    data: dict[str, Any]
    sentAt: float  # ms since the epoch, for the websocket latency metric


# ---------------------------------------------------------------------------
# Group names


_INVALID_GROUP_CHARS = re.compile(r"[^A-Za-z0-9\-_.]")
_MAX_GROUP_LENGTH = 99  # Channels requires len(name) < 100


def group_name(*parts: str) -> str:
    """A valid Channels group name from its parts; the one spelling producers and consumers share."""
    name = ".".join(_INVALID_GROUP_CHARS.sub("_", str(part)) for part in parts)
    if len(name) > _MAX_GROUP_LENGTH:
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:16]
        name = f"{name[: _MAX_GROUP_LENGTH - 17]}-{digest}"
    return name


def exchange_group(exchange: str) -> str:
    return group_name("exchange", exchange.lower())


def symbol_group(exchange: str, symbol: str) -> str:
    return group_name("symbol", exchange.lower(), symbol.upper())


def instrument_group(exchange: str, market_type: str, symbol: str) -> str:
    return group_name("instrument", exchange.lower(), market_type.lower(), symbol.upper())


def pair_group(pair_id: str) -> str:
    return group_name("pair", pair_id)


def plan_group(plan_id: str) -> str:
    return group_name("plan", plan_id)


def wildcard_group(kind: Literal["exchange", "symbol", "pair", "plan"]) -> str:
    return group_name(kind, WILDCARD)


def groups_for(event: str, data: Mapping[str, Any]) -> list[str]:
    """Every group an event goes to, chosen from the fields its data carries."""
    if event == "engine_alert":
        # Every connection is in `alerts`; sending to more groups would only be deduplicated away.
        return [ALERTS_GROUP]
    groups: list[str] = []
    exchange = data.get("exchange")
    if exchange:
        groups += [exchange_group(str(exchange)), wildcard_group("exchange")]
        symbol = data.get("symbol")
        if symbol:
            groups += [symbol_group(str(exchange), str(symbol)), wildcard_group("symbol")]
            market_type = data.get("type")
            if isinstance(market_type, str) and market_type.lower() in MARKET_TYPES:
                groups.append(instrument_group(str(exchange), market_type, str(symbol)))
    if data.get("pairId"):
        groups += [pair_group(str(data["pairId"])), wildcard_group("pair")]
    if data.get("planId"):
        groups += [plan_group(str(data["planId"])), wildcard_group("plan")]
    return groups


# ---------------------------------------------------------------------------
# Building the message

_SECRET_KEY_NAMES = re.compile(r"api_?key|secret|passphrase|password|signature|token", re.I)


def now_ms() -> int:
    return int(time.time() * 1000)


def _jsonable(value: Any) -> Any:
    """Event payloads are JSON numbers and strings (msgpack on the layer cannot carry Decimal)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _clean(event: str, data: Mapping[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in data.items():
        if _SECRET_KEY_NAMES.search(str(name)):
            # Nothing in an event should ever be named like a credential; drop it loudly.
            logger.error(
                "dropped a secret-looking field from an event",
                extra={"event": "ws_secret_dropped", "detail": {"ws_event": event, "field": str(name)}},
            )
            continue
        cleaned[str(name)] = _jsonable(value)
    cleaned.setdefault("ts", now_ms())
    return cleaned


def build_message(event: EventName | str, data: Mapping[str, Any]) -> tuple[LayerMessage, list[str]]:
    """The layer message and its groups; raises ValueError on an unknown event or non-object data."""
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown websocket event {event!r}")
    if not isinstance(data, Mapping):
        raise ValueError(f"event data must be an object, not {type(data).__name__}")
    payload = _clean(event, data)
    message: LayerMessage = {
        "type": MESSAGE_TYPE,
        "id": uuid.uuid4().hex,
        "event": event,
        "data": payload,
        "sentAt": time.time() * 1000,
    }
    return message, groups_for(event, payload)


# ---------------------------------------------------------------------------
# Failures: logged and counted, never raised

_failures = 0
_failures_unlogged = 0
_last_failure_log = 0.0
_counter_pool: concurrent.futures.ThreadPoolExecutor | None = None
_counter_pool_pid = 0
_counter_pending = 0
_failure_lock = threading.Lock()
# A down Redis fails every publish (10 a second from market data): one log line per interval.
FAILURE_LOG_INTERVAL_S = 10.0
# Failures waiting to reach the Redis counter; beyond this they are only counted in-process.
MAX_PENDING_COUNTS = 100


def failure_count() -> int:
    """Publish failures in this process since it started."""
    return _failures


def _counted(_: concurrent.futures.Future[None]) -> None:
    global _counter_pending
    with _failure_lock:
        _counter_pending -= 1


def _count_failure(event: str, reason: str, exc: BaseException | None = None) -> None:
    """Log and count a failed publish without waiting on Redis (the counter lives there too)."""
    global _failures, _failures_unlogged, _last_failure_log, _counter_pool, _counter_pool_pid, _counter_pending
    with _failure_lock:
        _failures += 1
        now = time.monotonic()
        should_log = now - _last_failure_log >= FAILURE_LOG_INTERVAL_S
        suppressed = _failures_unlogged
        if should_log:
            _last_failure_log, _failures_unlogged = now, 0
        else:
            _failures_unlogged += 1
        submit = _counter_pending < MAX_PENDING_COUNTS
        if submit:
            _counter_pending += 1
    if should_log:
        logger.warning(
            "websocket event not published: %s",
            reason,
            extra={
                "event": "ws_publish_failed",
                "success": False,
                "detail": {
                    "ws_event": event,
                    "error": type(exc).__name__ if exc else reason,
                    "suppressed_since_last_log": suppressed,
                },
            },
        )
    if not submit:
        return
    try:
        if _counter_pool is None or _counter_pool_pid != os.getpid():
            _counter_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ws-metrics")
            _counter_pool_pid = os.getpid()
            with _failure_lock:
                _counter_pending = 1  # after a fork, the parent's pending counts are not ours
        from arbsite import metrics

        _counter_pool.submit(metrics.incr, "ws_publish_failed").add_done_callback(_counted)
    except RuntimeError:  # interpreter shutting down
        _counted(concurrent.futures.Future())


def _timeout() -> float:
    return float(getattr(settings, "WS_PUBLISH_TIMEOUT", 0.5))


# ---------------------------------------------------------------------------
# Sending


async def _send(message: LayerMessage, groups: list[str]) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # One round-trip per group; concurrently, so a message costs about one Redis latency.
    await asyncio.gather(*(layer.group_send(group, dict(message)) for group in groups))


async def apublish(event: EventName, data: Mapping[str, Any]) -> bool:
    """Publish from async code; returns whether it was sent. Never raises."""
    try:
        message, groups = build_message(event, data)
    except (ValueError, TypeError) as exc:
        _count_failure(str(event), str(exc), exc)
        return False
    try:
        await asyncio.wait_for(_send(message, groups), timeout=_timeout())
        return True
    except TimeoutError as exc:
        _count_failure(event, "channel layer timed out", exc)
    except Exception as exc:  # noqa: BLE001 - a publish failure must never reach the producer
        _count_failure(event, "channel layer error", exc)
    return False


class _PublisherLoop:
    """One event loop thread per process for sync publishers.

    `async_to_sync` would build (and tear down) an event loop and a Redis connection per
    call; this keeps one of each, and lets a caller stop waiting after the timeout.
    Started lazily and again after a fork (Celery prefork children).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="ws-publisher", daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_publisher = _PublisherLoop()


def publish(event: EventName, data: Mapping[str, Any]) -> bool:
    """Publish from sync code (Celery, Django); returns whether it was sent in time. Never raises.

    Waits at most `WS_PUBLISH_TIMEOUT` seconds, so events from one caller arrive in order.
    Called from a thread running an event loop, it schedules the send and returns at once
    (blocking that loop would stall every other task on it).
    """
    try:
        message, groups = build_message(event, data)
    except (ValueError, TypeError) as exc:
        _count_failure(str(event), str(exc), exc)
        return False
    return _run_sync(event, lambda: _send(message, groups))


def send_control(group: str, message: dict[str, Any]) -> bool:
    """Send a server-internal message (not an event) to one group from sync code; never raises."""

    async def _go() -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer configured")
        await layer.group_send(group, message)

    return _run_sync(str(message.get("type", "control")), _go)


def _run_sync(label: str, make: Callable[[], Coroutine[Any, Any, None]]) -> bool:
    try:
        future = asyncio.run_coroutine_threadsafe(make(), _publisher.loop())
    except RuntimeError as exc:  # interpreter shutting down
        _count_failure(label, "publisher loop unavailable", exc)
        return False

    def _report(done: concurrent.futures.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            _count_failure(label, "channel layer error", done.exception())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # the normal case: no loop in this thread, so we may wait
    else:
        future.add_done_callback(_report)
        return True
    try:
        future.result(timeout=_timeout())
        return True
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        _count_failure(label, "channel layer timed out", exc)
    except Exception as exc:  # noqa: BLE001 - a publish failure must never reach the producer
        _count_failure(label, "channel layer error", exc)
    return False

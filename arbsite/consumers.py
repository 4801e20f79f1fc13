"""`/ws`: the desk's event stream, filtered by what each browser subscribed to.

Protocol (every message either way is one JSON object):

Server -> client: `{"event": NAME, "data": {...}}`, NAME one of `arbsite.events.EventName`
plus the replies `subscribed`, `unsubscribed`, `pong`, `error`.

Client -> server:
- `{"action": "subscribe", "exchanges": [...], "symbols": [...], "pairs": [...], "plans": [...]}`
  Every list is optional; `"*"` in a list means everything of that kind. Symbols are
  `exchange:SYMBOL` (any market type) or `exchange:type:SYMBOL` (type spot|linear).
  Reply: `{"event": "subscribed", "data": <all current subscriptions, same four lists>}`.
- `{"action": "unsubscribe", ...same lists}`; `"*"` removes every subscription of that kind.
  Reply: `{"event": "unsubscribed", "data": <remaining subscriptions>}`.
- `{"action": "ping"}` -> `{"event": "pong", "data": {"ts": <ms>}}`.
- `{"action": "client_event", "event": "arbitrage_triggered"|"arbitrage_result"|"connection_change",
  "data": {...}}`: the front end's business-event log; logged once, never re-broadcast, no reply.
- Anything malformed -> `{"event": "error", "data": {"code": "VALIDATION_ERROR", "message": ...}}`;
  the connection stays open.

Every connection also receives every `engine_alert`. When the session a socket was opened
with logs out (in any tab), the socket gets an AUTHENTICATION_REQUIRED error and is closed
with 4401 (the logout signal receiver below is connected when the ASGI app imports this module). An unauthenticated connection is
accepted, told `{"event": "error", "data": {"code": "AUTHENTICATION_REQUIRED", ...}}` and
closed with code 4401, so the browser can tell "log in" from "network down" (a refused
handshake reaches the browser only as an anonymous 1006).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time
from collections import OrderedDict
from typing import Any, Literal

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from arbsite import events, metrics
from arbsite.errors import ErrorCode

logger = logging.getLogger("arbsite.ws")
client_logger = logging.getLogger("arbsite.client")

CLOSE_UNAUTHENTICATED = 4401

CLIENT_EVENTS = frozenset({"arbitrage_triggered", "arbitrage_result", "connection_change"})
KINDS = ("exchanges", "symbols", "pairs", "plans")
ALL = "*"
MAX_MESSAGE_BYTES = 16 * 1024
MAX_CLIENT_EVENT_BYTES = 2048
# Client events per connection per minute; a buggy front end must not flood the logs.
CLIENT_EVENTS_PER_MINUTE = 60
# channels_redis forgets group members after a day; a long-lived connection rejoins when it pings.
GROUP_REFRESH_SECONDS = 3600.0
# Recent event ids, to drop the copy a client gets when it is in two matching groups.
SEEN_IDS_KEPT = 512

_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_MARKET_TYPES = frozenset(events.MARKET_TYPES)

_deliveries = itertools.count()
_WILDCARD_KIND: dict[str, Literal["exchange", "symbol", "pair", "plan"]] = {
    "exchanges": "exchange",
    "symbols": "symbol",
    "pairs": "pair",
    "plans": "plan",
}


def session_group(session_key: str) -> str:
    return events.group_name("session", session_key)


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """A logged-out browser must stop receiving events in every tab, not just the one that logged out."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        events.send_control(session_group(session_key), {"type": "desk.logout"})


class SubscriptionError(ValueError):
    """A subscribe/unsubscribe request the client must fix."""


def _max_subscriptions() -> int:
    return int(getattr(settings, "WS_MAX_SUBSCRIPTIONS", 200))


def _latency_sample_every() -> int:
    return max(1, int(getattr(settings, "WS_LATENCY_SAMPLE_EVERY", 10)))


def _exchanges() -> frozenset[str]:
    return frozenset(getattr(settings, "SUPPORTED_EXCHANGES", ("binance", "bybit", "okx", "bitget")))


def subscription_group(kind: str, item: str) -> str:
    """The group for one validated, canonical subscription item."""
    if item == ALL:
        return events.wildcard_group(_WILDCARD_KIND[kind])
    if kind == "exchanges":
        return events.exchange_group(item)
    if kind == "symbols":
        parts = item.split(":")
        if len(parts) == 2:
            return events.symbol_group(parts[0], parts[1])
        return events.instrument_group(parts[0], parts[1], parts[2])
    if kind == "pairs":
        return events.pair_group(item)
    return events.plan_group(item)


def _canonical(kind: str, raw: Any) -> str:
    """Validate one subscription item and return its canonical spelling."""
    if not isinstance(raw, str) or not raw.strip():
        raise SubscriptionError(f"{kind}: every item must be a non-empty string")
    item = raw.strip()
    if item == ALL:
        return ALL
    if kind == "exchanges":
        name = item.lower()
        if name not in _exchanges():
            raise SubscriptionError(f"exchanges: unknown exchange {item[:40]!r}")
        return name
    if kind == "symbols":
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise SubscriptionError(f"symbols: {item[:60]!r} is not exchange:SYMBOL or exchange:type:SYMBOL")
        exchange, symbol = parts[0].lower(), parts[-1].upper()
        if exchange not in _exchanges():
            raise SubscriptionError(f"symbols: unknown exchange in {item[:60]!r}")
        if not _SYMBOL_RE.match(symbol):
            raise SubscriptionError(f"symbols: {item[:60]!r} has no valid symbol (like BTCUSDT)")
        if len(parts) == 3:
            market_type = parts[1].lower()
            if market_type not in _MARKET_TYPES:
                raise SubscriptionError(f"symbols: market type in {item[:60]!r} must be spot or linear")
            return f"{exchange}:{market_type}:{symbol}"
        return f"{exchange}:{symbol}"
    if not _ID_RE.match(item):
        raise SubscriptionError(f"{kind}: {item[:60]!r} is not an id (1-64 of A-Z a-z 0-9 _ . -)")
    return item


def parse_subscription(content: dict[str, Any]) -> dict[str, list[str]]:
    """The four lists of a subscribe/unsubscribe message, validated and canonical."""
    unknown = set(content) - {"action", *KINDS}
    if unknown:
        raise SubscriptionError(f"unknown field(s): {', '.join(sorted(unknown))[:100]}; expected {', '.join(KINDS)}")
    parsed: dict[str, list[str]] = {}
    for kind in KINDS:
        raw = content.get(kind, [])
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise SubscriptionError(f"{kind} must be a list of strings")
        if len(raw) > _max_subscriptions():
            raise SubscriptionError(f"{kind}: at most {_max_subscriptions()} items")
        parsed[kind] = list(dict.fromkeys(_canonical(kind, item) for item in raw))
    return parsed


def _small(value: Any) -> Any:
    """Scalars only, strings trimmed: a client event is a log line, not a payload store."""
    if isinstance(value, str):
        return value[:200]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json.dumps(value, default=str)[:200]


class DeskConsumer(AsyncJsonWebsocketConsumer):
    """One browser connection: authenticated, subscribed to what it asked for, plus alerts."""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.subscriptions: dict[str, set[str]] = {kind: set() for kind in KINDS}
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.client_event_times: list[float] = []
        self.groups_refreshed_at = time.monotonic()
        self.authenticated = bool(self.user is not None and self.user.is_authenticated)
        if not self.authenticated:
            await self.accept()
            await self.send_json(
                {
                    "event": "error",
                    "data": {"code": ErrorCode.AUTHENTICATION_REQUIRED.value, "message": "Log in first."},
                }
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            logger.info("websocket refused: not authenticated", extra={"event": "ws_refused", "success": False})
            return
        self.groups = [events.ALERTS_GROUP]
        session = self.scope.get("session")
        if session is not None and session.get(SESSION_KEY) and session.session_key:
            # Signed in by this session (not a token): its logout, in any tab, ends this socket too.
            self.groups.append(session_group(session.session_key))
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    # -- client -> server -------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if not self.authenticated:
            return  # closing; nothing a refused client sends is read
        if text_data is None:
            await self.send_error("Send JSON text frames, not binary.")
            return
        if len(text_data) > MAX_MESSAGE_BYTES:
            await self.send_error(f"Message larger than {MAX_MESSAGE_BYTES} bytes.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("Message is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self.send_error('Message must be a JSON object with an "action".')
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action")
        try:
            if action == "subscribe":
                await self.subscribe(parse_subscription(content))
            elif action == "unsubscribe":
                await self.unsubscribe(parse_subscription(content))
            elif action == "ping":
                await self.refresh_groups()
                await self.send_json({"event": "pong", "data": {"ts": events.now_ms()}})
            elif action == "client_event":
                await self.client_event(content)
            else:
                raise SubscriptionError(
                    f"unknown action {str(action)[:40]!r}; expected subscribe, unsubscribe, ping or client_event"
                )
        except SubscriptionError as exc:
            await self.send_error(str(exc))

    async def send_error(self, message: str, code: str = ErrorCode.VALIDATION_ERROR.value) -> None:
        await self.send_json({"event": "error", "data": {"code": code, "message": message}})

    def current(self) -> dict[str, list[str]]:
        return {kind: sorted(items) for kind, items in self.subscriptions.items()}

    async def subscribe(self, request: dict[str, list[str]]) -> None:
        new = [(kind, item) for kind in KINDS for item in request[kind] if item not in self.subscriptions[kind]]
        total = sum(len(items) for items in self.subscriptions.values()) + len(new)
        if total > _max_subscriptions():
            raise SubscriptionError(f"at most {_max_subscriptions()} subscriptions per connection (would be {total})")
        for kind, item in new:
            group = subscription_group(kind, item)
            await self.channel_layer.group_add(group, self.channel_name)
            self.subscriptions[kind].add(item)
            self.groups.append(group)
        await self.send_json({"event": "subscribed", "data": self.current()})

    async def unsubscribe(self, request: dict[str, list[str]]) -> None:
        for kind in KINDS:
            items = set(self.subscriptions[kind]) if ALL in request[kind] else set(request[kind])
            for item in items & self.subscriptions[kind]:
                group = subscription_group(kind, item)
                await self.channel_layer.group_discard(group, self.channel_name)
                self.subscriptions[kind].discard(item)
                if group in self.groups:
                    self.groups.remove(group)
        await self.send_json({"event": "unsubscribed", "data": self.current()})

    async def refresh_groups(self) -> None:
        if time.monotonic() - self.groups_refreshed_at < GROUP_REFRESH_SECONDS:
            return
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_refreshed_at = time.monotonic()

    async def client_event(self, content: dict[str, Any]) -> None:
        name = content.get("event")
        if name not in CLIENT_EVENTS:
            raise SubscriptionError(f"client_event: event must be one of {', '.join(sorted(CLIENT_EVENTS))}")
        data = content.get("data", {})
        if not isinstance(data, dict):
            raise SubscriptionError("client_event: data must be an object")
        if len(json.dumps(data, default=str)) > MAX_CLIENT_EVENT_BYTES:
            raise SubscriptionError(f"client_event: data larger than {MAX_CLIENT_EVENT_BYTES} bytes")
        now = time.monotonic()
        self.client_event_times = [t for t in self.client_event_times if now - t < 60.0]
        if len(self.client_event_times) >= CLIENT_EVENTS_PER_MINUTE:
            await self.send_error("Too many client events; slow down.", ErrorCode.RATE_LIMITED.value)
            return
        self.client_event_times.append(now)
        small = {str(k)[:64]: _small(v) for k, v in list(data.items())[:20]}
        extra: dict[str, Any] = {
            "event": "client_event",
            "user": self.user.get_username(),
            "detail": {"name": name, "data": small},
        }
        # The structured fields the SPEC names, when the front end supplies them.
        for field in ("exchange", "pairId", "symbol", "success", "error_code", "latency_ms"):
            if field in small:
                extra[field] = small[field]
        client_logger.info("client event %s", name, extra=extra)

    # -- server -> client -------------------------------------------------

    async def desk_logout(self, message: dict[str, Any]) -> None:
        """The session this socket was opened with logged out (in any tab)."""
        self.authenticated = False
        await self.send_error("Logged out.", ErrorCode.AUTHENTICATION_REQUIRED.value)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def desk_event(self, message: dict[str, Any]) -> None:
        """A published event (`events.MESSAGE_TYPE`), delivered once even when several groups match."""
        event_id = message.get("id", "")
        if event_id in self.seen:
            return
        self.seen[event_id] = None
        if len(self.seen) > SEEN_IDS_KEPT:
            self.seen.popitem(last=False)
        await self.send_json({"event": message["event"], "data": message["data"]})
        sent_at = message.get("sentAt")
        if sent_at is not None and next(_deliveries) % _latency_sample_every() == 0:
            latency = max(0.0, time.time() * 1000 - float(sent_at))
            # metrics talks to Redis synchronously; keep it off the event loop.
            asyncio.get_running_loop().run_in_executor(None, metrics.observe, "ws_event_latency_ms", latency)

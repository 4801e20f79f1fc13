"""Bybit v5 spot and linear (api.bybit.com, stream.bybit.com/v5/public/{spot,linear}).

REST: `/v5/market/instruments-info` (the recorded response; verbatim unless filtered by symbol or
status, e.g. ccxt's `status=PreLaunch` query, which the recording answers with an empty list),
`/v5/market/orderbook` (the first, snapshot, message of the recording, trimmed to `limit`, in the
v5 envelope) and `/v5/market/time`.

Websocket: `subscribe`/`unsubscribe`/`ping` ops. `orderbook.{depth}.{SYMBOL}` replays the
recorded stream: verbatim at the recorded depth (200), and for a shallower depth (ccxt asks for
50 by default) as the top-N view of the same book, which is what Bybit's shallower streams are:
the snapshot cut to N levels, then per recorded message the levels of the top N that changed,
with "0" for levels that left it (update ids, seq and times kept). Deeper than recorded, or a
symbol with no recording, is refused like an invalid topic. Other topics are acknowledged and
stay silent.

Errors: 429 -> retCode 10006 "Too many visits!" (ccxt: RateLimitExceeded), 403 -> the IP-limit
text page, 5xx -> the gateway's HTML page by default, or a recorded body from data/bybit/errors/
chosen by its retCode (`body="10016"`), an unrecorded symbol -> retCode 10001 "Not supported symbols".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.venue.recordings import BybitBook, Frame, Recordings

if TYPE_CHECKING:
    from tests.venue.server import Connection, Subscription, Venue

CATEGORIES = ("spot", "linear", "inverse", "option")
ORDERBOOK_LIMITS = {"spot": (1, 200, 1), "linear": (1, 500, 25), "inverse": (1, 500, 25), "option": (1, 25, 1)}
_GATEWAY_PAGES = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Unavailable"}


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


class BybitVenue:
    name = "bybit"

    def __init__(self, data: Recordings) -> None:
        from tests.venue.server import now_ms

        self._now_ms = now_ms
        self.data = data
        self._recorded_errors = self._load_errors()
        self.routes: dict[tuple[str, str], Callable[[web.Request, Venue], Awaitable[web.StreamResponse]]] = {
            ("GET", "/v5/market/instruments-info"): self.instruments_info,
            ("GET", "/v5/market/orderbook"): self.orderbook,
            ("GET", "/v5/market/time"): self.server_time,
        }

    def _load_errors(self) -> dict[str, str]:
        path = self.data.data_dir / "bybit" / "errors" / "rest_error_bodies_from_ccxt_source.json"
        if not path.exists():
            return {}
        return {str(item["retCode"]): item["body_raw"] for item in json.loads(path.read_text())}

    def envelope(self, result: Any, ret_code: int = 0, ret_msg: str = "OK", status: int = 200) -> web.Response:
        body = {"retCode": ret_code, "retMsg": ret_msg, "result": result, "retExtInfo": {}, "time": self._now_ms()}
        return web.Response(status=status, text=_dumps(body), content_type="application/json")

    # --- REST ---------------------------------------------------------------------------------------------------

    async def server_time(self, _request: web.Request, _venue: Venue) -> web.StreamResponse:
        now = self._now_ms()
        return self.envelope({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    async def instruments_info(self, request: web.Request, _venue: Venue) -> web.StreamResponse:
        category = request.query.get("category", "")
        if category not in CATEGORIES:
            return self.envelope({}, 10001, "params error: Category is invalid")
        recorded = self.data.bybit_instruments.get(category)
        symbol, status = request.query.get("symbol"), request.query.get("status")
        if recorded is None:
            return self.envelope({"category": category, "list": [], "nextPageCursor": ""})
        if not symbol and not status:
            return web.Response(text=_dumps(recorded), content_type="application/json")
        items = [
            item
            for item in recorded["result"]["list"]
            if (not symbol or item["symbol"] == symbol) and (not status or item.get("status") == status)
        ]
        result = dict(recorded["result"], list=items)
        return self.envelope(result)

    async def orderbook(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        category = request.query.get("category", "")
        if category not in CATEGORIES:
            return self.envelope({}, 10001, "params error: Category is invalid")
        book = self.data.bybit_books.get((category, request.query.get("symbol", "")))
        if book is None:
            return self.envelope({}, 10001, "Not supported symbols")
        low, high, default = ORDERBOOK_LIMITS[category]
        try:
            limit = int(request.query.get("limit", default))
        except ValueError:
            return self.envelope({}, 10001, "params error: limit invalid")
        if not low <= limit <= high:
            return self.envelope({}, 10001, "params error: limit invalid")
        message = book.snapshot
        data = message["data"]
        offset = self._now_ms() - int(message["ts"]) if venue.shift_timestamps else 0
        result = {
            "s": data["s"],
            "b": data["b"][:limit],
            "a": data["a"][:limit],
            "ts": int(message["ts"]) + offset,
            "u": data["u"],
            "seq": data.get("seq"),
            "cts": int(message.get("cts", message["ts"])) + offset,
        }
        return self.envelope(result)

    # --- errors -------------------------------------------------------------------------------------------------

    def error_response(self, status: int, body: str | None) -> web.Response:
        if body is not None and body in self._recorded_errors:
            return web.Response(status=status, text=self._recorded_errors[body], content_type="application/json")
        if body is not None:
            return web.Response(status=status, text=body)
        if status == 429:
            return self.envelope({}, 10006, "Too many visits!", status=status)
        if status == 403:
            return web.Response(status=403, text="access too frequent", content_type="text/plain")
        if status >= 500:
            title = _GATEWAY_PAGES.get(status, f"{status} Server Error")
            page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
            return web.Response(status=status, text=page, content_type="text/html")
        return self.envelope({}, 10001, f"HTTP {status}", status=status)

    def not_found(self, method: str, path: str) -> web.Response:
        # Bybit's v5 envelope; no recorded 404 body exists, so the code is the generic params error.
        return self.envelope({}, 10001, f"Unknown path {method} {path} (not served by the venue emulator)", status=404)

    # --- websocket ----------------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request, venue: Venue, host: str, path: str) -> web.StreamResponse:
        connection = await venue.open_websocket(request, "bybit", host, path)
        category = path.rstrip("/").rsplit("/", 1)[-1]
        connection.meta.update(category=category, conn_id=f"venue{connection.id:06d}-emu")

        async def on_text(conn: Connection, text: str) -> None:
            await self._on_text(venue, conn, text)

        return await venue.serve_messages(connection, on_text)

    async def _on_text(self, venue: Venue, connection: Connection, text: str) -> None:
        conn_id = connection.meta["conn_id"]
        try:
            request = json.loads(text)
        except ValueError:
            await connection.send(
                _dumps(
                    {
                        "success": False,
                        "ret_msg": "error:invalid op",
                        "conn_id": conn_id,
                        "request": {"op": "", "args": None},
                    }
                )
            )
            return
        op = request.get("op") if isinstance(request, dict) else None
        req_id = request.get("req_id") if isinstance(request, dict) else None
        reply: dict[str, Any] = {"success": True, "ret_msg": "", "conn_id": conn_id}
        if req_id is not None:
            reply["req_id"] = str(req_id)
        if op == "ping":
            if connection.meta["category"] == "spot":
                pong: dict[str, Any] = {
                    "req_id": str(req_id or ""),
                    "op": "pong",
                    "args": [str(self._now_ms())],
                    "conn_id": conn_id,
                }
                await connection.send(_dumps(pong))
            else:
                await connection.send(_dumps({**reply, "ret_msg": "pong", "op": "ping"}))
        elif op == "subscribe":
            refused = [t for t in request.get("args") or [] if not self._subscribe(venue, connection, str(t))]
            if refused:
                reply.update(success=False, ret_msg="Invalid topic: " + ",".join(refused))
            await connection.send(_dumps({**reply, "op": "subscribe"}))
        elif op == "unsubscribe":
            for topic in request.get("args") or []:
                sub = connection.subscriptions.get(str(topic))
                if sub is not None:
                    venue.stop_subscription(sub, "closed")
            await connection.send(_dumps({**reply, "op": "unsubscribe"}))
        else:
            await connection.send(
                _dumps({"success": False, "ret_msg": f"error:handler not found,op:{op}", "conn_id": conn_id, "op": op})
            )

    def _subscribe(self, venue: Venue, connection: Connection, topic: str) -> bool:
        """Start a replay for an order-book topic; False when Bybit would refuse the topic."""
        parts = topic.split(".")
        if parts[0] != "orderbook":
            return True  # acknowledged, silent
        if len(parts) != 3 or not parts[1].isdigit():
            return False
        depth, symbol = int(parts[1]), parts[2]
        book = self.data.bybit_books.get((connection.meta["category"], symbol))
        if book is None or depth > book.depth or depth < 1:
            return False
        venue.start_subscription(
            connection, connection.meta["category"], topic, book.frames, self._renderer(venue, book, depth, topic)
        )
        return True

    def _renderer(
        self, venue: Venue, book: BybitBook, depth: int, topic: str
    ) -> Callable[[Subscription, Frame, int], str | None]:
        first_ms = int(book.frames[0].body["ts"])

        def render(sub: Subscription, frame: Frame, index: int) -> str | None:
            message = frame.body
            if index == 0:
                venue.anchor_time(sub, first_ms)
            if depth != book.depth:
                message = _top_view(sub.scratch, message, depth, topic)
            if sub.time_anchor_ms:
                message = dict(message)
                for key in ("ts", "cts"):
                    if key in message:
                        message[key] = venue.shifted(sub, int(message[key]))
            return _dumps(message)

        return render


def _top(side: dict[str, str], depth: int, descending: bool) -> dict[str, str]:
    prices = sorted(side, key=Decimal, reverse=descending)[:depth]
    return {p: side[p] for p in prices}


def _top_view(state: dict[str, Any], message: dict[str, Any], depth: int, topic: str) -> dict[str, Any]:
    """The message a depth-`depth` stream sends for this recorded deeper-stream message."""
    data = message["data"]
    if message.get("type") == "snapshot":
        state["b"] = {p: q for p, q in data["b"]}
        state["a"] = {p: q for p, q in data["a"]}
        view = {"b": _top(state["b"], depth, True), "a": _top(state["a"], depth, False)}
        new_data = dict(data, b=[[p, q] for p, q in view["b"].items()], a=[[p, q] for p, q in view["a"].items()])
        return dict(message, topic=topic, data=new_data)
    changes: dict[str, list[list[str]]] = {}
    for side, descending in (("b", True), ("a", False)):
        levels = state.setdefault(side, {})
        before = _top(levels, depth, descending)
        for price, qty in data.get(side, []):
            if Decimal(qty) == 0:
                levels.pop(price, None)
            else:
                levels[price] = qty
        after = _top(levels, depth, descending)
        diff = {p: q for p, q in after.items() if before.get(p) != q}
        diff.update({p: "0" for p in before if p not in after})
        changes[side] = [[p, diff[p]] for p in sorted(diff, key=Decimal, reverse=descending)]
    return dict(message, topic=topic, data=dict(data, b=changes["b"], a=changes["a"]))

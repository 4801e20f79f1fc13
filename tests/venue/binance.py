"""Binance spot (api.binance.com, stream.binance.com) and USDⓈ-M (fapi/fstream.binance.com).

REST: exchangeInfo (recorded, verbatim), depth (the recorded snapshot, trimmed to `limit`),
time and ping. Websocket: raw (`/ws`, `/public/ws/...`) and combined (`/stream?streams=`) endpoints,
`SUBSCRIBE`/`UNSUBSCRIBE`/`LIST_SUBSCRIPTIONS`; `<symbol>@depth[@Nms]` replays the recorded
diff-depth events (at the recorded cadence whatever the requested rate). A diff stream cannot
start over on the same socket, so at its end the socket closes even with on_end="loop". Other streams are
acknowledged and stay silent, as Binance does for a stream with no traffic.

Error bodies follow Binance's documented `{"code": <int>, "msg": "..."}` shape; the messages come
from data/binance/errors/ (429/418: -1003; an unrecorded symbol: -1121 "Invalid symbol.").
5xx default to the gateway's HTML page (what a load balancer in front of the API answers);
pass `body="-1001"` (or any text) to send a JSON body instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.venue.recordings import BinanceBook, Frame, Recordings

if TYPE_CHECKING:
    from tests.venue.server import Connection, Subscription, Venue

SPOT_DEPTH_LIMITS = range(1, 5001)
USDM_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_DOCUMENTED_500 = {
    "-1000": "An unknown error occured while processing the request.",
    "-1001": "Internal error; unable to process your request. Please try again.",
    "-1008": "Server is currently overloaded with other requests. Please try again in a few minutes.",
}
_GATEWAY_PAGES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json", headers=headers
    )


class BinanceVenue:
    name = "binance"

    def __init__(self, data: Recordings) -> None:
        from tests.venue.server import now_ms

        self._now_ms = now_ms
        self.data = data
        self.listed = {"spot": data.binance_listed("spot"), "usdm": data.binance_listed("usdm")}
        self._messages = self._documented_messages()
        self.routes: dict[tuple[str, str], Callable[[web.Request, Venue], Awaitable[web.StreamResponse]]] = {
            ("GET", "/api/v3/exchangeInfo"): self.exchange_info,
            ("GET", "/fapi/v1/exchangeInfo"): self.exchange_info,
            ("GET", "/api/v3/depth"): self.depth,
            ("GET", "/fapi/v1/depth"): self.depth,
            ("GET", "/api/v3/time"): self.server_time,
            ("GET", "/fapi/v1/time"): self.server_time,
            ("GET", "/api/v3/ping"): self.ping,
            ("GET", "/fapi/v1/ping"): self.ping,
        }

    def _documented_messages(self) -> dict[int, str]:
        path = self.data.data_dir / "binance" / "errors" / "error_codes_observed_and_documented.json"
        messages: dict[int, str] = {}
        if path.exists():
            for item in json.loads(path.read_text()).get("items", []):
                if item.get("code") == -1003:
                    messages[int(item["http_status"])] = item["msg"]
        return messages

    # --- REST ---------------------------------------------------------------------------------------------------

    async def exchange_info(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        market = "usdm" if "/fapi/" in request.path else "spot"
        body = self.data.binance_usdm_info if market == "usdm" else self.data.binance_spot_info
        return web.Response(body=body, content_type="application/json")

    async def server_time(self, _request: web.Request, _venue: Venue) -> web.StreamResponse:
        return _json({"serverTime": self._now_ms()})

    async def ping(self, _request: web.Request, _venue: Venue) -> web.StreamResponse:
        return _json({})

    async def depth(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        market = "usdm" if "/fapi/" in request.path else "spot"
        symbol = request.query.get("symbol", "")
        if not symbol:
            return _json(
                {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}, 400
            )
        book = self.data.binance_books.get((market, symbol))
        if book is None:
            # Listed or not: with no recording, answer as Binance answers a symbol it cannot serve.
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400)
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _json(
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
                },
                400,
            )
        allowed = USDM_DEPTH_LIMITS if market == "usdm" else SPOT_DEPTH_LIMITS
        if limit not in allowed:
            return _json({"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}, 400)
        snapshot = dict(book.snapshot)
        snapshot["bids"] = snapshot["bids"][:limit]
        snapshot["asks"] = snapshot["asks"][:limit]
        if venue.shift_timestamps and "E" in snapshot:
            offset = self._now_ms() - int(snapshot["E"])
            for key in ("E", "T"):
                if key in snapshot:
                    snapshot[key] = int(snapshot[key]) + offset
        return _json(snapshot)

    # --- errors -------------------------------------------------------------------------------------------------

    def error_response(self, status: int, body: str | None) -> web.Response:
        headers: dict[str, str] = {}
        if status in (418, 429):
            headers["Retry-After"] = "120" if status == 418 else "60"
        if body is not None and body in _DOCUMENTED_500:
            return _json({"code": int(body), "msg": _DOCUMENTED_500[body]}, status, headers)
        if body is not None:
            return web.Response(status=status, text=body, headers=headers)
        if status == 429:
            template = self._messages.get(
                429, "Too much request weight used; current limit is %s request weight per %s."
            )
            msg = template.replace("%s", self._weight_limit(), 1).replace("%s", "1 MINUTE", 1)
            return _json({"code": -1003, "msg": msg}, status, headers)
        if status == 418:
            template = self._messages.get(418, "Way too much request weight used; IP banned until %s.")
            msg = template.replace("%s", str(self._now_ms() + 120_000), 1)
            return _json({"code": -1003, "msg": msg}, status, headers)
        if status >= 500:
            title = _GATEWAY_PAGES.get(status, f"{status} Server Error")
            page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
            return web.Response(status=status, text=page, content_type="text/html")
        return _json({"code": -1000, "msg": "An unknown error occured while processing the request."}, status, headers)

    def _weight_limit(self) -> str:
        info = json.loads(self.data.binance_spot_info)
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT":
                return str(limit.get("limit"))
        return "6000"

    def not_found(self, method: str, path: str) -> web.Response:
        # Binance's error shape; the code is the generic "unknown" one (no recorded 404 body exists).
        return _json({"code": -1000, "msg": f"Unknown path {method} {path} (not served by the venue emulator)."}, 404)

    # --- websocket ----------------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request, venue: Venue, host: str, path: str) -> web.StreamResponse:
        market = "usdm" if host.startswith("fstream") else "spot"
        combined = path.startswith("/stream")
        connection = await venue.open_websocket(request, "binance", host, path)
        connection.meta.update(combined=combined, market=market)
        if combined:
            for stream in filter(None, request.query.get("streams", "").split("/")):
                self._subscribe(venue, connection, stream)

        async def on_text(conn: Connection, text: str) -> None:
            await self._on_text(venue, conn, text)

        return await venue.serve_messages(connection, on_text)

    async def _on_text(self, venue: Venue, connection: Connection, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            await connection.send(
                json.dumps({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            )
            return
        if not isinstance(request, dict) or "method" not in request:
            await connection.send(
                json.dumps({"error": {"code": 2, "msg": "Invalid request: unknown variant"}, "id": None})
            )
            return
        method = str(request.get("method", "")).upper()
        request_id = request.get("id")
        params = request.get("params") or []
        if method == "SUBSCRIBE":
            # Acknowledge first: ccxt only creates the book (and starts buffering) on the ack.
            await connection.send(json.dumps({"result": None, "id": request_id}, separators=(",", ":")))
            for stream in params:
                self._subscribe(venue, connection, str(stream))
        elif method == "UNSUBSCRIBE":
            for stream in params:
                sub = connection.subscriptions.get(str(stream))
                if sub is not None:
                    venue.stop_subscription(sub, "closed")
            await connection.send(json.dumps({"result": None, "id": request_id}, separators=(",", ":")))
        elif method == "LIST_SUBSCRIPTIONS":
            await connection.send(json.dumps({"result": sorted(connection.subscriptions), "id": request_id}))
        else:
            await connection.send(
                json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": request_id})
            )

    def _subscribe(self, venue: Venue, connection: Connection, stream: str) -> None:
        market: str = connection.meta["market"]
        symbol, _, channel = stream.partition("@")
        book = self.data.binance_books.get((market, symbol.upper()))
        if not (channel == "depth" or channel.startswith("depth@")) or book is None:
            # Binance accepts any stream name; a stream with no traffic simply never sends.
            return
        venue.start_subscription(connection, market, stream, book.frames, self._renderer(venue, book), can_loop=False)

    def _renderer(self, venue: Venue, book: BinanceBook) -> Callable[[Subscription, Frame, int], str | None]:
        first_ms = int(book.frames[0].body.get("E", 0)) if book.frames else 0

        def render(sub: Subscription, frame: Frame, index: int) -> str | None:
            event = frame.body
            if index == 0:
                venue.anchor_time(sub, first_ms)
            if sub.time_anchor_ms:
                event = dict(event)
                for key in ("E", "T"):
                    if key in event:
                        event[key] = venue.shifted(sub, int(event[key]))
            body: dict[str, Any] = event
            if sub.connection.meta.get("combined"):
                body = {"stream": sub.stream, "data": event}
            return json.dumps(body, separators=(",", ":"))

        return render

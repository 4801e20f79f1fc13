"""OKX v5 public market data (www.okx.com REST, ws.okx.com/ws/v5/public); no trading endpoints.

REST:
- `/api/v5/public/instruments?instType=SPOT|SWAP|FUTURES`: the recorded 2022 responses
  (data/okx/metadata/rest_instruments_*_trimmed.json), byte for byte; filtered by `instId` or
  `uly`/`instFamily` when asked (the recorded envelope `{"code":"0","data":[...],"msg":""}` around
  the recorded items). An instType with no recording (OPTION, MARGIN) answers an empty `data`.
- `/api/v5/market/books?instId=..&sz=..`: the first (snapshot) message of the recorded `books`
  stream, its levels cut to `sz` (OKX: default 1, at most 400), `ts` moved to the present like the
  stream's. Real OKX sends no checksum on REST, so neither does this.
- `/api/v5/public/time`: `{"code":"0","data":[{"ts":"<now ms>"}],"msg":""}`.

Websocket (`/ws/v5/public`, any path): the text frame `ping` is answered `pong`, as OKX does.
`{"op":"subscribe","args":[{"channel":"books","instId":..}]}` is acknowledged per arg with the
recorded `{"event":"subscribe","arg":{...}}` (data/okx/ws_control) and then the recorded stream
is replayed: every message verbatim (levels and `checksum` untouched, so the CRC32 of the rebuilt
book matches), only `data[0].ts` shifted to the present when `shift_timestamps` is on (the
checksum does not cover `ts`). Other channels (tickers, trades, books5, ...) are acknowledged and
stay silent. `books` for an instId with no recording is refused with the error event whose shape
ccxt's okx source quotes (code 60018 "... doesn't exist"; not recorded). `unsubscribe` stops the
replay and answers `{"event":"unsubscribe","arg":{...}}`. A frame that is not JSON gets OKX's
60012 "Illegal request" event (shape also from ccxt's source).

Errors: 429 -> the recorded 50011 "Too Many Requests" body, 401 -> the recorded 50111 body
(data/okx/errors/), or a recorded body chosen by its code (`body="50011"`). Codes that are OKX's
documented ones but have no recorded body (51000 parameter error, 51001 unknown instrument, 50001
for 5xx) use the same `{"code","data","msg"}` envelope as the recorded responses.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.venue.recordings import OKX_INST_TYPES, Frame, OkxBook, Recordings

if TYPE_CHECKING:
    from tests.venue.server import Connection, Subscription, Venue

BOOKS_MAX_SZ = 400
UNRECORDED_INST_TYPES = ("MARGIN", "OPTION")
_RECORDED_ERRORS = {"50011": "http_429_rate_limit_50011.json", "50111": "http_401_invalid_access_key_50111.json"}


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def envelope(data: list[Any], code: str = "0", msg: str = "", status: int = 200) -> web.Response:
    """OKX's REST envelope, as in the recorded responses."""
    return web.Response(status=status, text=_dumps({"code": code, "data": data, "msg": msg}),
                        content_type="application/json")


def stream_name(inst_id: str) -> str:
    """The subscription (and fault) name of an instrument's `books` replay."""
    return f"books:{inst_id}"


class OkxVenue:
    name = "okx"

    def __init__(self, data: Recordings) -> None:
        from tests.venue.server import now_ms

        self._now_ms = now_ms
        self.data = data
        self._recorded_errors = self._load_errors()
        self.routes: dict[tuple[str, str], Callable[[web.Request, Venue], Awaitable[web.StreamResponse]]] = {
            ("GET", "/api/v5/public/instruments"): self.instruments,
            ("GET", "/api/v5/market/books"): self.books,
            ("GET", "/api/v5/public/time"): self.server_time,
        }

    def _load_errors(self) -> dict[str, str]:
        folder = self.data.data_dir / "okx" / "errors"
        return {code: (folder / name).read_text() for code, name in _RECORDED_ERRORS.items()
                if (folder / name).exists()}

    # --- REST ---------------------------------------------------------------------------------------------------

    async def server_time(self, _request: web.Request, _venue: Venue) -> web.StreamResponse:
        return envelope([{"ts": str(self._now_ms())}])

    async def instruments(self, request: web.Request, _venue: Venue) -> web.StreamResponse:
        inst_type = request.query.get("instType", "")
        if inst_type in UNRECORDED_INST_TYPES:
            return envelope([])
        if inst_type not in OKX_INST_TYPES:
            return envelope([], "51000", "Parameter instType error")
        recorded = self.data.okx_instruments.get(inst_type)
        if recorded is None:
            return envelope([])
        inst_id = request.query.get("instId")
        family = request.query.get("instFamily") or request.query.get("uly")
        if not inst_id and not family:
            return web.Response(body=recorded, content_type="application/json")
        items = [
            item for item in json.loads(recorded)["data"]
            if (not inst_id or item["instId"] == inst_id) and (not family or item.get("uly") == family)
        ]
        return envelope(items)

    async def books(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        inst_id = request.query.get("instId", "")
        if not inst_id:
            return envelope([], "51000", "Parameter instId error")
        book = self.data.okx_books.get(inst_id)
        if book is None:
            return envelope([], "51001", "Instrument ID does not exist")
        try:
            size = int(request.query.get("sz", "1"))
        except ValueError:
            return envelope([], "51000", "Parameter sz error")
        if not 1 <= size <= BOOKS_MAX_SZ:
            return envelope([], "51000", "Parameter sz error")
        data = book.snapshot["data"][0]
        ts = int(data["ts"])
        if venue.shift_timestamps:
            ts = self._now_ms()
        return envelope([{"asks": data["asks"][:size], "bids": data["bids"][:size], "ts": str(ts)}])

    # --- errors -------------------------------------------------------------------------------------------------

    def error_response(self, status: int, body: str | None) -> web.Response:
        if body is not None and body in self._recorded_errors:
            return web.Response(status=status, text=self._recorded_errors[body], content_type="application/json")
        if body is not None:
            return web.Response(status=status, text=body)
        if status == 429 and "50011" in self._recorded_errors:
            return web.Response(status=429, text=self._recorded_errors["50011"], content_type="application/json")
        if status == 401 and "50111" in self._recorded_errors:
            return web.Response(status=401, text=self._recorded_errors["50111"], content_type="application/json")
        if status >= 500:
            return envelope([], "50001", "Service temporarily unavailable. Please try again later", status)
        return envelope([], "50000", f"HTTP {status}", status)

    def not_found(self, method: str, path: str) -> web.Response:
        return envelope([], "50000", f"Unknown path {method} {path} (not served by the venue emulator)", 404)

    # --- websocket ----------------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request, venue: Venue, host: str, path: str) -> web.StreamResponse:
        connection = await venue.open_websocket(request, "okx", host, path)

        async def on_text(conn: Connection, text: str) -> None:
            await self._on_text(venue, conn, text)

        return await venue.serve_messages(connection, on_text)

    async def _on_text(self, venue: Venue, connection: Connection, text: str) -> None:
        if text == "ping":
            await connection.send("pong")
            return
        try:
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            await connection.send(_dumps({"event": "error", "msg": f"Illegal request: {text}", "code": "60012"}))
            return
        op = request.get("op")
        args = request.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            await connection.send(_dumps({"event": "error", "msg": f"Illegal request: {text}", "code": "60012"}))
            return
        for arg in args:
            if not isinstance(arg, dict) or not arg.get("channel"):
                await connection.send(_dumps({"event": "error", "msg": f"Illegal request: {text}", "code": "60012"}))
                continue
            channel, inst_id = str(arg["channel"]), str(arg.get("instId", ""))
            if op == "unsubscribe":
                sub = connection.subscriptions.get(stream_name(inst_id))
                if channel == "books" and sub is not None:
                    venue.stop_subscription(sub, "closed")
                await connection.send(_dumps({"event": "unsubscribe", "arg": arg}))
                continue
            book = self.data.okx_books.get(inst_id) if channel == "books" else None
            if channel == "books" and book is None:
                await connection.send(_dumps({
                    "event": "error", "msg": f"channel:{channel},instId:{inst_id} doesn't exist", "code": "60018"}))
                continue
            await connection.send(_dumps({"event": "subscribe", "arg": arg}))
            if book is not None:
                venue.start_subscription(connection, "okx", stream_name(inst_id), book.frames,
                                         self._renderer(venue, book))

    def _renderer(self, venue: Venue, book: OkxBook) -> Callable[[Subscription, Frame, int], str | None]:
        first_ms = int(book.snapshot["data"][0]["ts"])

        def render(sub: Subscription, frame: Frame, index: int) -> str | None:
            message = frame.body
            if index == 0:
                venue.anchor_time(sub, first_ms)
            if sub.time_anchor_ms:
                data = [dict(item, ts=str(venue.shifted(sub, int(item["ts"])))) for item in message["data"]]
                message = dict(message, data=data)
            return _dumps(message)

        return render

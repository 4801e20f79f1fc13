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

Trading (`BinanceTrading`, over `tests.venue.trading`): signed endpoints checked as Binance does
(`X-MBX-APIKEY` known, else -2015/HTTP 401; HMAC-SHA256 of query string + body with the secret,
else -1022; `timestamp` within `recvWindow`, else -1021). Spot `/api/v3/order` (POST with
`newClientOrderId`, `newOrderRespType` ACK/RESULT/FULL with fills; GET and DELETE by `orderId` or
`origClientOrderId`), `/api/v3/openOrders`, `/api/v3/account`; USD-M `/fapi/v1/order` (answers
ACK as NEW by default, like the exchange), `/fapi/v1/openOrders`, `/fapi/v2|v3/account`,
`/fapi/v2|v3/balance`, `/fapi/v2|v3/positionRisk`, `/fapi/v1/leverageBracket`; and the `/sapi`
currency and margin-pair lists ccxt reads when keys are set (empty: the desk trades neither).
Response shapes follow data/binance/trading/ccxt_static_http_responses.json with wire types
(numbers where Binance sends numbers). Rejections: -2010 "Account has insufficient balance for
requested action." (USD-M: -2019 "Margin is insufficient."), -1013 "Filter failure: MIN_NOTIONAL"
(or NOTIONAL, the recorded filter's name) / LOT_SIZE / PRICE_FILTER (USD-M: -4164 notional,
-1111 precision, -4014 tick), duplicate client id -2010 "Duplicate order sent." (USD-M -4116),
unknown order -2013 (query) / -2011 (cancel).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.venue.recordings import BinanceBook, Frame, Recordings
from tests.venue.trading import FORCED_REJECT, Account, Order, OrderReject, Position, Rules, plain

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
        self.trading = BinanceTrading(self)
        self.routes.update(self.trading.routes())
        self.order_routes = {("POST", "/api/v3/order"), ("POST", "/fapi/v1/order")}

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
        venue.start_subscription(
            connection, market, stream, book.frames, self._renderer(venue, book), can_loop=False, symbol=book.symbol
        )

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


# --- trading ------------------------------------------------------------------------------------------------------

_BINANCE_REJECTS: dict[tuple[str, str], tuple[int, str]] = {
    ("spot", "insufficient_balance"): (-2010, "Account has insufficient balance for requested action."),
    ("usdm", "insufficient_balance"): (-2019, "Margin is insufficient."),
    ("spot", "min_qty"): (-1013, "Filter failure: LOT_SIZE"),
    ("usdm", "min_qty"): (-1013, "Filter failure: LOT_SIZE"),
    ("spot", "lot_size"): (-1013, "Filter failure: LOT_SIZE"),
    ("usdm", "lot_size"): (-1111, "Precision is over the maximum defined for this asset."),
    ("spot", "tick_size"): (-1013, "Filter failure: PRICE_FILTER"),
    ("usdm", "tick_size"): (-4014, "Price not increased by tick size."),
    ("spot", "duplicate"): (-2010, "Duplicate order sent."),
    ("usdm", "duplicate"): (-4116, "ClientOrderId is duplicated."),
    ("spot", "unknown_symbol"): (-1121, "Invalid symbol."),
    ("usdm", "unknown_symbol"): (-1121, "Invalid symbol."),
    ("usdm", "reduce_only"): (-2022, "ReduceOnly Order is rejected."),
}
_SPOT_DEFAULT_RESP = {"MARKET": "FULL", "LIMIT": "FULL"}


def _inner_path(request: web.Request) -> str:
    return "/" + request.match_info.get("path", "")


def _market_of(path: str) -> str:
    return "usdm" if path.startswith("/fapi/") else "spot"


class BinanceTrading:
    """Binance's signed account endpoints (spot `/api/v3/...`, USD-M `/fapi/...`) over a TradingDesk."""

    def __init__(self, venue_module: BinanceVenue) -> None:
        self.module = venue_module

    def routes(self) -> dict[tuple[str, str], Callable[[web.Request, Venue], Awaitable[web.StreamResponse]]]:
        return {
            ("POST", "/api/v3/order"): self.create_order,
            ("POST", "/fapi/v1/order"): self.create_order,
            ("GET", "/api/v3/order"): self.query_order,
            ("GET", "/fapi/v1/order"): self.query_order,
            ("DELETE", "/api/v3/order"): self.cancel_order,
            ("DELETE", "/fapi/v1/order"): self.cancel_order,
            ("GET", "/api/v3/openOrders"): self.open_orders,
            ("GET", "/fapi/v1/openOrders"): self.open_orders,
            ("GET", "/api/v3/account"): self.spot_account,
            ("GET", "/fapi/v2/account"): self.futures_account,
            ("GET", "/fapi/v3/account"): self.futures_account,
            ("GET", "/fapi/v2/balance"): self.futures_balance,
            ("GET", "/fapi/v3/balance"): self.futures_balance,
            ("GET", "/fapi/v2/positionRisk"): self.position_risk,
            ("GET", "/fapi/v3/positionRisk"): self.position_risk,
            ("GET", "/sapi/v1/capital/config/getall"): self.capital_config,
            ("GET", "/fapi/v1/leverageBracket"): self.leverage_brackets,
            ("GET", "/sapi/v1/margin/allPairs"): self.capital_config,
            ("GET", "/sapi/v1/margin/isolated/allPairs"): self.capital_config,
        }

    # --- signing --------------------------------------------------------------------------------------------------

    async def authenticate(self, request: web.Request, venue: Venue) -> tuple[Account, dict[str, str]] | web.Response:
        """Binance's check: known X-MBX-APIKEY, HMAC-SHA256 of query+body, timestamp within recvWindow."""
        desk = venue.trading["binance"]
        account = desk.accounts.get(request.headers.get("X-MBX-APIKEY", ""))
        if account is None:
            return _json({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, 401)
        query = request.raw_path.partition("?")[2]
        body = await request.text() if request.body_exists else ""
        pieces = [p for part in (query, body) for p in part.split("&") if p]
        signature = next((p.partition("=")[2] for p in pieces if p.startswith("signature=")), "")
        if not signature:
            return _json({"code": -1102, "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or "
                                                "malformed."}, 400)
        signed = "".join(
            "&".join(p for p in part.split("&") if p and not p.startswith("signature=")) for part in (query, body)
        )
        expected = hmac.new(account.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return _json({"code": -1022, "msg": "Signature for this request is not valid."}, 400)
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        params.pop("signature", None)
        try:
            timestamp = int(params.get("timestamp", ""))
            recv_window = int(params.get("recvWindow", "5000"))
        except ValueError:
            return _json({"code": -1102, "msg": "Mandatory parameter 'timestamp' was not sent, was empty/null, or "
                                                "malformed."}, 400)
        now = self.module._now_ms()
        if timestamp > now + 1000:
            return _json({"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."},
                         400)
        if now - timestamp > recv_window:
            return _json({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, 400)
        return account, params

    @staticmethod
    def reject(market: str, exc: OrderReject, *, cancel: bool = False, rules: Rules | None = None) -> web.Response:
        if exc.kind == "not_found":
            return _json({"code": -2011, "msg": "Unknown order sent."} if cancel
                         else {"code": -2013, "msg": "Order does not exist."}, 400)
        if exc.kind == "min_notional":
            if market == "usdm":
                floor = plain(rules.min_notional) if rules else "5"
                return _json({"code": -4164, "msg": f"Order's notional must be no smaller than {floor} (unless you "
                                                    "choose reduce only)."}, 400)
            name = rules.notional_filter if rules else "NOTIONAL"
            return _json({"code": -1013, "msg": f"Filter failure: {name}"}, 400)
        code, msg = _BINANCE_REJECTS.get((market, exc.kind), (-1013, "Invalid quantity."))
        return _json({"code": code, "msg": msg}, 400)

    # --- orders ---------------------------------------------------------------------------------------------------

    async def create_order(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        market = _market_of(_inner_path(request))
        desk = venue.trading["binance"]
        symbol = params.get("symbol", "")
        order_type = params.get("type", "").upper()
        side = params.get("side", "").upper()
        if order_type not in ("MARKET", "LIMIT") or side not in ("BUY", "SELL"):
            return _json({"code": -1116, "msg": "Invalid orderType."} if side in ("BUY", "SELL")
                         else {"code": -1117, "msg": "Invalid side."}, 400)
        try:
            qty = Decimal(params["quantity"]) if params.get("quantity") else Decimal(0)
            price = Decimal(params["price"]) if params.get("price") else None
            quote_qty = Decimal(params["quoteOrderQty"]) if params.get("quoteOrderQty") else None
        except ArithmeticError:
            return _json({"code": -1100, "msg": "Illegal characters found in a parameter."}, 400)
        tif = params.get("timeInForce", "GTC").upper() if order_type == "LIMIT" else "GTC"
        if order_type == "LIMIT" and "timeInForce" not in params:
            return _json({"code": -1102, "msg": "Mandatory parameter 'timeInForce' was not sent, was empty/null, "
                                                "or malformed."}, 400)
        try:
            order = desk.place(
                account, market, symbol, side, order_type, qty, price=price, tif=tif,
                client_id=params.get("newClientOrderId", ""), quote_qty=quote_qty if side == "BUY" else None,
                reduce_only=params.get("reduceOnly", "").lower() == "true",
                forced=request.get(FORCED_REJECT),
            )
        except OrderReject as exc:
            return self.reject(market, exc, rules=desk.rules.get(market, {}).get(symbol))
        default = _SPOT_DEFAULT_RESP.get(order_type, "ACK") if market == "spot" else "ACK"
        resp_type = params.get("newOrderRespType", default).upper()
        if market == "usdm":
            return _json(self.render_usdm(order, acknowledged=resp_type == "ACK"))
        return _json(self.render_spot(order, resp_type))

    def _lookup(self, venue: Venue, account: Account, params: dict[str, str]) -> Order | None:
        desk = venue.trading["binance"]
        order_id = params.get("orderId")
        return desk.find(account, order_id=int(order_id) if order_id and order_id.isdigit() else None,
                         client_id=params.get("origClientOrderId"), symbol=params.get("symbol"))

    async def query_order(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        market = _market_of(_inner_path(request))
        if not params.get("orderId") and not params.get("origClientOrderId"):
            return _json({"code": -1102, "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both "
                                                "were empty/null!"}, 400)
        order = self._lookup(venue, account, params)
        if order is None or order.market != market:
            return self.reject(market, OrderReject("not_found"))
        return _json(self.render_usdm(order, query=True) if market == "usdm" else self.render_spot(order, "QUERY"))

    async def cancel_order(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        market = _market_of(_inner_path(request))
        order = self._lookup(venue, account, params)
        if order is None or order.market != market:
            return self.reject(market, OrderReject("not_found"), cancel=True)
        try:
            venue.trading["binance"].cancel(account, order)
        except OrderReject as exc:
            return self.reject(market, exc, cancel=True)
        return _json(self.render_usdm(order) if market == "usdm" else self.render_spot(order, "RESULT"))

    async def open_orders(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        market = _market_of(_inner_path(request))
        orders = venue.trading["binance"].open_orders(account, market, params.get("symbol"))
        return _json([self.render_usdm(o, query=True) if market == "usdm" else self.render_spot(o, "QUERY")
                      for o in orders])

    @staticmethod
    def render_spot(order: Order, resp_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                                "clientOrderId": order.client_id}
        if resp_type != "QUERY":
            body["transactTime"] = order.updated_ms
            if resp_type == "ACK":
                return body
        body.update({
            "price": plain(order.price or Decimal(0), 8),
            "origQty": plain(order.qty, 8),
            "executedQty": plain(order.filled, 8),
            "origQuoteOrderQty": plain(order.quote_qty or Decimal(0), 8),
            "cummulativeQuoteQty": plain(order.cost, 8),
            "status": order.status,
            "timeInForce": order.tif,
            "type": order.type,
            "side": order.side,
        })
        if resp_type == "QUERY":
            body.update({"stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": order.created_ms,
                         "updateTime": order.updated_ms, "isWorking": True})
        body["workingTime"] = order.created_ms
        if resp_type == "FULL":
            body["fills"] = [{"price": plain(f.price, 8), "qty": plain(f.qty, 8), "commission": plain(f.fee, 8),
                              "commissionAsset": f.fee_asset, "tradeId": f.trade_id} for f in order.fills]
        body["selfTradePreventionMode"] = "EXPIRE_MAKER"
        return body

    @staticmethod
    def render_usdm(order: Order, *, acknowledged: bool = False, query: bool = False) -> dict[str, Any]:
        ack = acknowledged and not query
        body: dict[str, Any] = {
            "orderId": order.order_id,
            "symbol": order.symbol,
            "status": "NEW" if ack else order.status,
            "clientOrderId": order.client_id,
            "price": plain(order.price or Decimal(0)),
            "avgPrice": "0.00" if ack or not order.filled else plain(order.average),
            "origQty": plain(order.qty),
            "executedQty": "0" if ack else plain(order.filled),
            "cumQty": "0" if ack else plain(order.filled),
            "cumQuote": "0" if ack else plain(order.cost),
            "timeInForce": order.tif,
            "type": order.type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "updateTime": order.created_ms if ack else order.updated_ms,
        }
        if query:
            body["time"] = order.created_ms
        return body

    # --- account --------------------------------------------------------------------------------------------------

    async def spot_account(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        omit = params.get("omitZeroBalances", "").lower() == "true"
        assets = sorted(set(account.spot) | set(account.locked))
        balances = [{"asset": a, "free": plain(account.spot.get(a, Decimal(0)), 8),
                     "locked": plain(account.locked.get(a, Decimal(0)), 8)} for a in assets
                    if not omit or account.spot.get(a) or account.locked.get(a)]
        return _json({
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.module._now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 365859102,
        })

    def _futures_figures(self, venue: Venue, account: Account) -> dict[str, Decimal]:
        desk = venue.trading["binance"]
        wallet = account.futures.get("USDT", Decimal(0))
        upnl = sum((desk.unrealised("usdm", s, p) for s, p in account.positions.items()), Decimal(0))
        initial = wallet - desk.available_margin(account)
        return {"wallet": wallet, "upnl": upnl, "initial": initial, "available": wallet + upnl - initial}

    async def futures_account(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, _params = auth
        f = self._futures_figures(venue, account)
        now = self.module._now_ms()
        asset = {
            "asset": "USDT", "walletBalance": plain(f["wallet"], 8), "unrealizedProfit": plain(f["upnl"], 8),
            "marginBalance": plain(f["wallet"] + f["upnl"], 8), "maintMargin": "0.00000000",
            "initialMargin": plain(f["initial"], 8), "positionInitialMargin": plain(f["initial"], 8),
            "openOrderInitialMargin": "0.00000000", "maxWithdrawAmount": plain(f["available"], 8),
            "crossWalletBalance": plain(f["wallet"], 8), "crossUnPnl": plain(f["upnl"], 8),
            "availableBalance": plain(f["available"], 8), "marginAvailable": True, "updateTime": now,
        }
        return _json({
            "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "tradeGroupId": -1,
            "updateTime": 0, "multiAssetsMargin": False,
            "totalInitialMargin": asset["initialMargin"], "totalMaintMargin": "0.00000000",
            "totalWalletBalance": asset["walletBalance"], "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"], "totalPositionInitialMargin": asset["initialMargin"],
            "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": asset["walletBalance"],
            "totalCrossUnPnl": asset["unrealizedProfit"], "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"], "assets": [asset],
            "positions": [self._position_row(venue, s, p) for s, p in account.positions.items() if p.qty],
        })

    async def futures_balance(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, _params = auth
        f = self._futures_figures(venue, account)
        return _json([{
            "accountAlias": "SgsR", "asset": "USDT", "balance": plain(f["wallet"], 8),
            "crossWalletBalance": plain(f["wallet"], 8), "crossUnPnl": plain(f["upnl"], 8),
            "availableBalance": plain(f["available"], 8), "maxWithdrawAmount": plain(f["available"], 8),
            "marginAvailable": True, "updateTime": self.module._now_ms(),
        }])

    def _position_row(self, venue: Venue, symbol: str, position: Position) -> dict[str, Any]:
        desk = venue.trading["binance"]
        mark = desk.mark_price("usdm", symbol)
        upnl = desk.unrealised("usdm", symbol, position)
        initial = abs(position.qty) * position.entry / position.leverage
        return {
            "symbol": symbol, "positionSide": "BOTH", "positionAmt": plain(position.qty),
            "entryPrice": plain(position.entry), "breakEvenPrice": plain(position.entry),
            "markPrice": plain(mark), "unRealizedProfit": plain(upnl, 8), "liquidationPrice": "0",
            "isolatedMargin": "0", "notional": plain(position.qty * mark, 8), "marginAsset": "USDT",
            "isolatedWallet": "0", "initialMargin": plain(initial, 8), "maintMargin": "0",
            "positionInitialMargin": plain(initial, 8), "openOrderInitialMargin": "0", "adl": 0,
            "bidNotional": "0", "askNotional": "0", "leverage": str(position.leverage), "marginType": "cross",
            "updateTime": position.updated_ms,
        }

    async def position_risk(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        symbol = params.get("symbol")
        rows = [self._position_row(venue, s, p) for s, p in account.positions.items()
                if (symbol is None or s == symbol) and (p.qty or "v2" in request.path)]
        return _json(rows)

    async def leverage_brackets(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        """One bracket per listed USD-M symbol (ccxt reads them before positions): 125x up to 50k notional."""
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        _account, params = auth
        symbols = [params["symbol"]] if params.get("symbol") else sorted(self.module.listed["usdm"])
        bracket = {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
                   "maintMarginRatio": 0.004, "cum": 0.0}
        return _json([{"symbol": s, "brackets": [bracket]} for s in symbols])

    async def capital_config(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        # ccxt asks for currencies and margin pairs when keys are set; the desk trades spot and USD-M only.
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        return _json([])

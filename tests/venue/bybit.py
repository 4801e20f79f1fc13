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

Trading (`BybitTrading`, over `tests.venue.trading`, one unified wallet per account): v5 signing
checked as Bybit does (`X-BAPI-API-KEY` known, else retCode 10003 "API key is invalid."; `X-BAPI-SIGN`
= HMAC-SHA256 of timestamp + key + recvWindow + query string (GET) or body (POST), else 10004
"error sign! origin_string[...]"; the timestamp within the window, else 10002). `/v5/order/create`
(acknowledges `{orderId, orderLinkId}` as recorded in data/bybit/trading/; a spot market buy is
sized in quote unless `marketUnit=baseCoin`), `/v5/order/cancel`, `/v5/order/realtime` (by
`orderLinkId` or `orderId` it also answers closed orders), `/v5/order/history`,
`/v5/account/wallet-balance` (shape of data/bybit/trading/unified_rest_wallet-balance.json),
`/v5/position/list`, and what ccxt asks first with keys: `/v5/user/query-api`, `/v5/account/info`
(a UTA), `/v5/asset/coin/query-info`. Rejections: 110007 "ab not enough for new order" (the recorded
body, linear) / 170131 "Insufficient balance." (spot), 110094 / 170140 minimum order value,
10001 / 170136-170137 quantity, 110072 duplicate orderLinkId, 110001 / 170213 unknown order.
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

from tests.venue.recordings import BybitBook, Frame, Recordings
from tests.venue.trading import FORCED_REJECT, Account, Order, OrderReject, plain

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
        self.trading = BybitTrading(self)
        self.routes.update(self.trading.routes())
        self.order_routes = {("POST", "/v5/order/create")}

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
            connection, connection.meta["category"], topic, book.frames, self._renderer(venue, book, depth, topic),
            symbol=symbol,
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


# --- trading ------------------------------------------------------------------------------------------------------

_BYBIT_REJECTS: dict[tuple[str, str], tuple[int, str]] = {
    ("spot", "insufficient_balance"): (170131, "Insufficient balance."),
    ("spot", "min_notional"): (170140, "Order value exceeded lower limit."),
    ("linear", "min_notional"): (110094, "Order does not meet minimum order value 5USDT"),
    ("spot", "min_qty"): (170136, "Order quantity exceeded lower limit."),
    ("linear", "min_qty"): (10001, "The number of contracts exceeds minimum limit allowed"),
    ("spot", "lot_size"): (170137, "Order quantity has too many decimals."),
    ("linear", "lot_size"): (10001, "Qty invalid"),
    ("spot", "tick_size"): (170134, "Order price has too many decimals."),
    ("linear", "tick_size"): (10001, "Price invalid"),
    ("spot", "duplicate"): (110072, "OrderLinkedID is duplicate"),
    ("linear", "duplicate"): (110072, "OrderLinkedID is duplicate"),
    ("spot", "unknown_symbol"): (10001, "params error: symbol invalid"),
    ("linear", "unknown_symbol"): (10001, "params error: symbol invalid"),
    ("spot", "not_found"): (170213, "Order does not exist."),
    ("linear", "not_found"): (110001, "order not exists or too late to cancel"),
    ("linear", "reduce_only"): (110017, "Reduce-only rule not satisfied"),
}
_BYBIT_STATUS = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled", "REJECTED": "Rejected"}
TRADING_CATEGORIES = ("spot", "linear")


class BybitTrading:
    """Bybit v5's signed endpoints over a TradingDesk (one unified wallet per account)."""

    def __init__(self, venue_module: BybitVenue) -> None:
        self.module = venue_module

    def routes(self) -> dict[tuple[str, str], Callable[[web.Request, Venue], Awaitable[web.StreamResponse]]]:
        return {
            ("POST", "/v5/order/create"): self.create_order,
            ("POST", "/v5/order/cancel"): self.cancel_order,
            ("GET", "/v5/order/realtime"): self.realtime_orders,
            ("GET", "/v5/order/history"): self.order_history,
            ("GET", "/v5/account/wallet-balance"): self.wallet_balance,
            ("GET", "/v5/position/list"): self.positions,
            ("GET", "/v5/user/query-api"): self.query_api,
            ("GET", "/v5/account/info"): self.account_info,
            ("GET", "/v5/asset/coin/query-info"): self.coin_info,
        }

    def recorded_error(self, ret_code: int, status: int = 200) -> web.Response | None:
        raw = self.module._recorded_errors.get(str(ret_code))
        if raw is None:
            return None
        body = json.loads(raw)
        if "time" in body:
            body["time"] = self.module._now_ms()
        return web.Response(status=status, text=_dumps(body), content_type="application/json")

    async def authenticate(self, request: web.Request, venue: Venue) -> tuple[Account, dict[str, Any]] | web.Response:
        """Bybit v5: X-BAPI-SIGN = HMAC-SHA256(timestamp + apiKey + recvWindow + queryString|body)."""
        headers = request.headers
        api_key = headers.get("X-BAPI-API-KEY", "")
        account = venue.trading["bybit"].accounts.get(api_key)
        if account is None:
            return self.module.envelope({}, 10003, "API key is invalid.", status=401)
        timestamp, recv_window = headers.get("X-BAPI-TIMESTAMP", ""), headers.get("X-BAPI-RECV-WINDOW", "5000")
        query = request.raw_path.partition("?")[2]
        body = await request.text() if request.body_exists else ""
        origin = f"{timestamp}{api_key}{recv_window}{body if request.method == 'POST' else query}"
        expected = hmac.new(account.secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "").lower()):
            return self.module.envelope({}, 10004, f"error sign! origin_string[{origin}]", status=401)
        now = self.module._now_ms()
        try:
            ts, window = int(timestamp), int(recv_window)
        except ValueError:
            ts, window = 0, 0
        if not now - window <= ts < now + 1000:
            return self.module.envelope(
                {}, 10002, "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{recv_window}]")
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        if request.method == "POST" and body:
            try:
                params.update(json.loads(body))
            except ValueError:
                return self.module.envelope({}, 10001, "params error: request body is not JSON")
        return account, params

    def reject(self, category: str, exc: OrderReject) -> web.Response:
        if exc.kind == "insufficient_balance" and category == "linear":
            recorded = self.recorded_error(110007)
            if recorded is not None:
                return recorded
            return self.module.envelope({}, 110007, "ab not enough for new order")
        code, msg = _BYBIT_REJECTS.get((category, exc.kind), (10001, f"params error: {exc.detail}"))
        return self.module.envelope({}, code, msg)

    async def create_order(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        category = str(params.get("category", ""))
        if category not in TRADING_CATEGORIES:
            return self.module.envelope({}, 10001, "params error: Category is invalid")
        side = {"Buy": "BUY", "Sell": "SELL"}.get(str(params.get("side")))
        order_type = {"Market": "MARKET", "Limit": "LIMIT"}.get(str(params.get("orderType")))
        if side is None or order_type is None:
            return self.module.envelope({}, 10001, "params error: side or orderType invalid")
        try:
            qty = Decimal(str(params.get("qty", "0")))
            price = Decimal(str(params["price"])) if params.get("price") not in (None, "") else None
        except ArithmeticError:
            return self.module.envelope({}, 10001, "params error: qty or price invalid")
        tif = str(params.get("timeInForce") or ("IOC" if order_type == "MARKET" else "GTC")).upper()
        if tif == "POSTONLY":
            tif = "GTC"
        quote_qty = None
        if category == "spot" and order_type == "MARKET" and side == "BUY" and params.get("marketUnit") != "baseCoin":
            quote_qty, qty = qty, Decimal(0)  # a spot market buy is sized in quote unless told otherwise
        try:
            order = venue.trading["bybit"].place(
                account, category, str(params.get("symbol", "")), side, order_type, qty, price=price, tif=tif,
                client_id=str(params.get("orderLinkId") or ""), quote_qty=quote_qty,
                reduce_only=bool(params.get("reduceOnly")), forced=request.get(FORCED_REJECT),
            )
        except OrderReject as exc:
            return self.reject(category, exc)
        return self.module.envelope({"orderId": str(order.order_id), "orderLinkId": order.client_id})

    async def cancel_order(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        category = str(params.get("category", ""))
        order = self._lookup(venue, account, params)
        if order is None or order.market != category:
            return self.reject(category, OrderReject("not_found"))
        try:
            venue.trading["bybit"].cancel(account, order)
        except OrderReject as exc:
            return self.reject(category, exc)
        return self.module.envelope({"orderId": str(order.order_id), "orderLinkId": order.client_id})

    @staticmethod
    def _lookup(venue: Venue, account: Account, params: dict[str, Any]) -> Order | None:
        order_id = str(params.get("orderId") or "")
        return venue.trading["bybit"].find(
            account, order_id=int(order_id) if order_id.isdigit() else None,
            client_id=str(params.get("orderLinkId") or "") or None, symbol=params.get("symbol") or None)

    async def realtime_orders(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        return await self._orders(request, venue, history=False)

    async def order_history(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        return await self._orders(request, venue, history=True)

    async def _orders(self, request: web.Request, venue: Venue, *, history: bool) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        category = str(params.get("category", ""))
        if category not in TRADING_CATEGORIES:
            return self.module.envelope({}, 10001, "params error: Category is invalid")
        if params.get("orderId") or params.get("orderLinkId"):
            # Asked by id, realtime answers open and recent closed orders alike.
            found = self._lookup(venue, account, params)
            orders = [found] if found is not None and found.market == category else []
        else:
            symbol = params.get("symbol")
            orders = [o for o in reversed(venue.trading["bybit"].orders[account.api_key])
                      if o.market == category and (symbol is None or o.symbol == symbol)
                      and (history or o.is_open or str(params.get("openOnly")) == "1")]
            if history:
                orders = [o for o in orders if not o.is_open]
        limit = int(params.get("limit") or 20)
        return self.module.envelope({"list": [self.render(o) for o in orders[:limit]], "nextPageCursor": "",
                                     "category": category})

    @staticmethod
    def render(order: Order) -> dict[str, Any]:
        status = _BYBIT_STATUS.get(order.status)
        if status is None:  # CANCELED / EXPIRED
            partial = order.filled > 0 and order.market == "spot"
            status = "PartiallyFilledCanceled" if partial else "Cancelled"
        leaves = Decimal(0) if not order.is_open else order.qty - order.filled
        return {
            "orderId": str(order.order_id), "orderLinkId": order.client_id, "blockTradeId": "",
            "symbol": order.symbol, "price": plain(order.price or Decimal(0)), "qty": plain(order.qty),
            "side": "Buy" if order.side == "BUY" else "Sell", "isLeverage": "", "positionIdx": 0,
            "orderStatus": status, "cancelType": "UNKNOWN" if order.is_open or status == "Filled" else "CancelByUser",
            "rejectReason": "EC_NoError", "avgPrice": plain(order.average) if order.filled else "",
            "leavesQty": plain(leaves), "leavesValue": plain(leaves * (order.price or Decimal(0))),
            "cumExecQty": plain(order.filled), "cumExecValue": plain(order.cost), "cumExecFee": plain(order.fee),
            "timeInForce": order.tif, "orderType": "Market" if order.type == "MARKET" else "Limit",
            "stopOrderType": "", "orderIv": "", "triggerPrice": "", "takeProfit": "", "stopLoss": "",
            "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0, "triggerBy": "",
            "lastPriceOnCreated": "", "reduceOnly": order.reduce_only, "closeOnTrigger": False,
            "smpType": "None", "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "",
            "slLimitPrice": "", "placeType": "", "marketUnit": "quoteCoin" if order.quote_qty else "",
            "createdTime": str(order.created_ms), "updatedTime": str(order.updated_ms),
        }

    async def wallet_balance(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        if str(params.get("accountType", "UNIFIED")).upper() != "UNIFIED":
            return self.module.envelope({}, 10001, "accountType only support UNIFIED.")
        desk = venue.trading["bybit"]
        position_im = sum((abs(p.qty) * p.entry / p.leverage for p in account.positions.values()), Decimal(0))
        upnl = sum((desk.unrealised("linear", s, p) for s, p in account.positions.items()), Decimal(0))
        wanted = str(params.get("coin") or "")
        coins = []
        for coin in sorted(set(account.spot) | set(account.locked)):
            if wanted and coin not in wanted.split(","):
                continue
            free, locked = account.spot.get(coin, Decimal(0)), account.locked.get(coin, Decimal(0))
            im = position_im if coin == "USDT" else Decimal(0)
            coin_upnl = upnl if coin == "USDT" else Decimal(0)
            coins.append({
                "availableToBorrow": "", "bonus": "0", "accruedInterest": "0",
                "availableToWithdraw": plain(free - im), "totalOrderIM": "0", "equity": plain(free + locked + coin_upnl),
                "totalPositionMM": "0", "usdValue": plain(free + locked) if coin == "USDT" else "0",
                "unrealisedPnl": plain(coin_upnl), "collateralSwitch": True, "spotHedgingQty": "0",
                "borrowAmount": "0", "totalPositionIM": plain(im), "walletBalance": plain(free + locked),
                "cumRealisedPnl": plain(sum((p.realised for p in account.positions.values()), Decimal(0))
                                        if coin == "USDT" else Decimal(0)),
                "locked": plain(locked), "marginCollateral": True, "coin": coin, "spotBorrow": "0",
            })
        usdt = account.spot.get("USDT", Decimal(0)) + account.locked.get("USDT", Decimal(0))
        total = {
            "totalEquity": plain(usdt + upnl), "accountIMRate": "0", "totalMarginBalance": plain(usdt + upnl),
            "totalInitialMargin": plain(position_im), "accountType": "UNIFIED",
            "totalAvailableBalance": plain(usdt + upnl - position_im), "accountMMRate": "0",
            "totalPerpUPL": plain(upnl), "totalWalletBalance": plain(usdt), "accountLTV": "0",
            "totalMaintenanceMargin": "0", "coin": coins,
        }
        return self.module.envelope({"list": [total]})

    async def positions(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, params = auth
        category = str(params.get("category", ""))
        if category != "linear":
            return self.module.envelope({}, 10001, "params error: Category is invalid")
        symbol = params.get("symbol")
        if not symbol and not params.get("settleCoin"):
            return self.module.envelope({}, 10001, "params error: symbol or settleCoin is required")
        desk = venue.trading["bybit"]
        rows = []
        for name, p in account.positions.items():
            if symbol and name != symbol:
                continue
            mark = desk.mark_price("linear", name)
            rows.append({
                "positionIdx": 0, "tradeMode": 0, "riskId": 1, "riskLimitValue": "2000000", "symbol": name,
                "side": "" if not p.qty else ("Buy" if p.qty > 0 else "Sell"), "size": plain(abs(p.qty)),
                "avgPrice": plain(p.entry), "positionValue": plain(abs(p.qty) * p.entry),
                "positionBalance": "0", "markPrice": plain(mark), "leverage": str(p.leverage),
                "positionIM": plain(abs(p.qty) * p.entry / p.leverage), "positionMM": "0",
                "takeProfit": "", "stopLoss": "", "trailingStop": "0",
                "unrealisedPnl": plain(desk.unrealised("linear", name, p)), "curRealisedPnl": plain(p.realised),
                "cumRealisedPnl": plain(p.realised), "createdTime": str(p.created_ms),
                "updatedTime": str(p.updated_ms), "tpslMode": "Full", "liqPrice": "", "bustPrice": "",
                "category": "linear", "positionStatus": "Normal", "adlRankIndicator": 2 if p.qty else 0,
                "autoAddMargin": 0, "leverageSysUpdatedTime": "", "mmrSysUpdatedTime": "", "seq": 1,
                "isReduceOnly": False,
            })
        return self.module.envelope({"list": rows, "nextPageCursor": "", "category": "linear"})

    async def query_api(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        account, _params = auth
        return self.module.envelope({
            "id": "13770661", "note": "venue emulator", "apiKey": account.api_key, "readOnly": 0, "secret": "",
            "permissions": {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": [],
                            "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [],
                            "Exchange": [], "NFT": []},
            "ips": ["*"], "type": 1, "deadlineDay": 83, "expiredAt": "", "createdAt": "2025-01-01T00:00:00Z",
            "unified": 0, "uta": 1, "userID": 24617703, "inviterID": 0, "vipLevel": "No VIP",
            "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": True,
        })

    async def coin_info(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        # ccxt asks for currencies when keys are set; the desk needs none of their network details.
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        return self.module.envelope({"rows": []})

    async def account_info(self, request: web.Request, venue: Venue) -> web.StreamResponse:
        auth = await self.authenticate(request, venue)
        if isinstance(auth, web.Response):
            return auth
        return self.module.envelope({
            "unifiedMarginStatus": 4, "marginMode": "REGULAR_MARGIN", "isMasterTrader": False,
            "spotHedgingStatus": "OFF", "updatedTime": str(self.module._now_ms()), "dcpStatus": "OFF",
            "timeWindow": 10, "smpGroup": 0,
        })

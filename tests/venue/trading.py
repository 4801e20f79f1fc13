"""Trading on the emulator: accounts, orders matched against the replayed book, balances and positions.

Exchange-neutral core; `binance.py` and `bybit.py` parse requests, verify signatures and render
answers in their exchange's shapes and error codes.

- **Accounts** are `{api_key: secret}` per exchange, each with starting funds. A Binance account
  has a spot wallet and a separate USD-M futures wallet; a Bybit (unified) account has one wallet
  for spot and linear, as a UTA has.
- **The book an order meets** is the emulator's *current* replayed book for that market: the
  recorded snapshot, moved on by every recorded update any subscription of the emulator has sent
  so far (the furthest replay wins; a new subscription starting over does not move it back).
  Our own fills do not consume the replayed liquidity: the recording overwrites levels anyway.
- **Matching**: market orders walk the opposite side (a Bybit spot market buy sized in quote
  spends up to that much); limit orders walk it up to their price; IOC cancels the rest (EXPIRED /
  Cancelled); a GTC rest stays open, never fills later (the replay has no trades against it) and
  can be cancelled, which releases what it locked.
- **Money**: spot moves base and quote, the taker fee charged in the asset received (Binance's and
  Bybit's default without fee tokens); linear keeps a signed position with an average entry, the
  fee and the realised PnL go to the USDT wallet; opening needs notional / leverage + fee available.
- **Rejections** are raised as `OrderReject(kind, ...)` and mapped to each exchange's own code:
  `insufficient_balance`, `min_notional`, `min_qty`, `lot_size`, `tick_size`, `duplicate`,
  `unknown_symbol`, `not_found`, `reduce_only`. A spot limit order must be covered in full at its
  limit price (what the exchange locks before matching), a market order by what it fills. The `reject_order` fault forces one on the next order(s).

All state lives on the emulator's event loop; tests read it through `VenueEmulator.account()`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import web

from tests.venue.recordings import Recordings
from tests.venue.replay import Book

ZERO = Decimal(0)
# Set by the `reject_order` fault on the request it refuses: the reason the handler answers with.
FORCED_REJECT: web.RequestKey[str] = web.RequestKey("emulator_reject", str)

# The test accounts every emulator knows unless told otherwise (no real keys anywhere).
TEST_ACCOUNTS: dict[str, dict[str, str]] = {
    "binance": {"emu-binance-key": "emu-binance-secret"},
    "bybit": {"emu-bybit-key": "emu-bybit-secret"},
}
DEFAULT_FUNDS: dict[str, str] = {"USDT": "100000", "BTC": "1", "ETH": "10"}
# Taker fees (Binance spot from the recorded account's commissionRates; the others are the
# exchanges' published base-tier taker rates).
TAKER_FEES = {
    ("binance", "spot"): Decimal("0.001"),
    ("binance", "usdm"): Decimal("0.0005"),
    ("bybit", "spot"): Decimal("0.001"),
    ("bybit", "linear"): Decimal("0.00055"),
}
DEFAULT_LEVERAGE = {"binance": 20, "bybit": 10}
REJECT_KINDS = ("insufficient_balance", "min_notional", "min_qty", "lot_size", "tick_size", "duplicate",
                "unknown_symbol", "not_found", "reduce_only")


def now_ms() -> int:
    return int(time.time() * 1000)


class OrderReject(Exception):
    """An order the exchange refuses; `kind` is one of REJECT_KINDS, `detail` fills the message."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class Rules:
    """What one market accepts (from the recorded exchangeInfo / instruments-info)."""

    base: str
    quote: str
    qty_step: Decimal
    min_qty: Decimal
    tick: Decimal
    min_notional: Decimal
    notional_filter: str = "MIN_NOTIONAL"  # Binance spot: the filter's own name


@dataclass
class Position:
    qty: Decimal = ZERO  # signed, base units
    entry: Decimal = ZERO
    realised: Decimal = ZERO
    leverage: int = 10
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)


@dataclass
class Account:
    api_key: str
    secret: str
    spot: dict[str, Decimal]
    futures: dict[str, Decimal]  # Binance USD-M wallet; the same dict as `spot` on a Bybit unified account
    locked: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "spot": {a: str(v) for a, v in self.spot.items()},
            "futures": {a: str(v) for a, v in self.futures.items()},
            "locked": {a: str(v) for a, v in self.locked.items() if v},
            "positions": {s: {"qty": str(p.qty), "entry": str(p.entry), "realised": str(p.realised)}
                          for s, p in self.positions.items()},
        }


@dataclass
class Fill:
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    trade_id: int


@dataclass
class Order:
    exchange: str
    market: str  # binance: spot | usdm; bybit: spot | linear
    symbol: str
    order_id: int
    client_id: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    tif: str  # GTC | IOC | FOK
    price: Decimal | None
    qty: Decimal
    quote_qty: Decimal | None = None  # a market buy sized in quote (Bybit spot default)
    reduce_only: bool = False
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # quote value filled
    fee: Decimal = ZERO
    fee_asset: str = ""
    status: str = "NEW"  # NEW | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED | REJECTED
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    fills: list[Fill] = field(default_factory=list)

    @property
    def average(self) -> Decimal:
        return self.cost / self.filled if self.filled else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class Arrival:
    """One create-order request as it reached the emulator (before any check)."""

    exchange: str
    path: str
    symbol: str
    client_id: str
    wall_ns: int  # time.time_ns(), comparable with a detector's clock in another process


class LiveBooks:
    """The current replayed book of every recorded market, advanced by the replays."""

    def __init__(self, data: Recordings) -> None:
        self.data = data
        self._books: dict[tuple[str, str, str], tuple[Book, int]] = {}

    def _initial(self, exchange: str, market: str, symbol: str) -> tuple[Book, int] | None:
        if exchange == "binance":
            recorded = self.data.binance_books.get((market, symbol))
            if recorded is None:
                return None
            snap = recorded.snapshot
            book = Book(update_id=int(snap["lastUpdateId"]))
            book.apply(snap.get("bids", []), snap.get("asks", []))
            return book, -1
        recorded_y = self.data.bybit_books.get((market, symbol))
        if recorded_y is None:
            return None
        book = Book()
        self._apply_bybit(book, recorded_y.frames[0].body)
        return book, 0

    def book(self, exchange: str, market: str, symbol: str) -> Book | None:
        key = (exchange, market, symbol)
        if key not in self._books:
            initial = self._initial(exchange, market, symbol)
            if initial is None:
                return None
            self._books[key] = initial
        return self._books[key][0]

    def advance(self, exchange: str, market: str, symbol: str, index: int) -> None:
        """A replay just sent recorded frame `index` of this market: bring the book up to it."""
        if self.book(exchange, market, symbol) is None:
            return
        key = (exchange, market, symbol)
        book, cursor = self._books[key]
        if index <= cursor:
            return
        if exchange == "binance":
            frames = self.data.binance_books[(market, symbol)].frames
            for frame in frames[cursor + 1: index + 1]:
                event = frame.body
                if book.update_id is not None and int(event.get("u", 0)) <= book.update_id:
                    continue
                book.apply(event.get("b", []), event.get("a", []))
                book.update_id = int(event.get("u", 0))
        else:
            for frame in self.data.bybit_books[(market, symbol)].frames[cursor + 1: index + 1]:
                self._apply_bybit(book, frame.body)
        self._books[key] = (book, index)

    @staticmethod
    def _apply_bybit(book: Book, message: dict[str, Any]) -> None:
        data = message["data"]
        if message.get("type") == "snapshot":
            book.bids.clear()
            book.asks.clear()
        book.apply(data.get("b", []), data.get("a", []))
        book.update_id = int(data.get("u", 0))


def _d(text: Any, default: str = "0") -> Decimal:
    return Decimal(str(text)) if text not in (None, "") else Decimal(default)


def binance_rules(exchange_info: bytes) -> dict[str, Rules]:
    out: dict[str, Rules] = {}
    for item in json.loads(exchange_info).get("symbols", []):
        filters = {f["filterType"]: f for f in item.get("filters", [])}
        lot, price = filters.get("LOT_SIZE", {}), filters.get("PRICE_FILTER", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        out[item["symbol"]] = Rules(
            base=item["baseAsset"], quote=item["quoteAsset"], qty_step=_d(lot.get("stepSize")),
            min_qty=_d(lot.get("minQty")), tick=_d(price.get("tickSize")),
            min_notional=_d(notional.get("minNotional", notional.get("notional"))),
            notional_filter="NOTIONAL" if "NOTIONAL" in filters else "MIN_NOTIONAL",
        )
    return out


def bybit_rules(instruments: dict[str, Any]) -> dict[str, Rules]:
    out: dict[str, Rules] = {}
    for item in instruments.get("result", {}).get("list", []):
        lot, price = item.get("lotSizeFilter", {}), item.get("priceFilter", {})
        out[item["symbol"]] = Rules(
            base=item["baseCoin"], quote=item["quoteCoin"],
            qty_step=_d(lot.get("qtyStep") or lot.get("basePrecision")), min_qty=_d(lot.get("minOrderQty")),
            tick=_d(price.get("tickSize")), min_notional=_d(lot.get("minNotionalValue") or lot.get("minOrderAmt")),
        )
    return out


def _off_step(value: Decimal, step: Decimal) -> bool:
    return bool(step) and value % step != 0


class TradingDesk:
    """One exchange's accounts and orders; `place`/`cancel` are what the order endpoints call."""

    def __init__(self, exchange: str, data: Recordings, books: LiveBooks,
                 accounts: dict[str, str], funds: dict[str, str] | None = None) -> None:
        self.exchange = exchange
        self.books = books
        self.accounts: dict[str, Account] = {}
        for api_key, secret in accounts.items():
            self.add_account(api_key, secret, funds)
        if exchange == "binance":
            self.rules = {"spot": binance_rules(data.binance_spot_info), "usdm": binance_rules(data.binance_usdm_info)}
        else:
            self.rules = {c: bybit_rules(data.bybit_instruments.get(c, {})) for c in ("spot", "linear")}
        self.orders: dict[str, list[Order]] = {key: [] for key in self.accounts}
        self.arrivals: list[Arrival] = []
        start = 4087922044 if exchange == "binance" else 1971981115648733696
        self._order_ids = itertools.count(start)
        self._trade_ids = itertools.count(309520010)

    def add_account(self, api_key: str, secret: str, funds: dict[str, str] | None = None) -> Account:
        wallet = {a: Decimal(v) for a, v in (funds or DEFAULT_FUNDS).items()}
        futures = {"USDT": wallet.get("USDT", ZERO)} if self.exchange == "binance" else wallet
        account = Account(api_key, secret, wallet, futures)
        self.accounts[api_key] = account
        if hasattr(self, "orders"):
            self.orders.setdefault(api_key, [])
        return account

    def market_rules(self, market: str, symbol: str) -> Rules:
        rules = self.rules.get(market, {}).get(symbol)
        if rules is None or self.books.book(self.exchange, market, symbol) is None:
            raise OrderReject("unknown_symbol", symbol)
        return rules

    # --- orders -------------------------------------------------------------------------------------------------

    def find(self, account: Account, *, order_id: int | None = None, client_id: str | None = None,
             symbol: str | None = None) -> Order | None:
        for order in reversed(self.orders[account.api_key]):
            if symbol is not None and order.symbol != symbol:
                continue
            if (order_id is not None and order.order_id == order_id) or (
                client_id is not None and order.client_id == client_id
            ):
                return order
        return None

    def open_orders(self, account: Account, market: str, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders[account.api_key]
                if o.market == market and o.is_open and (symbol is None or o.symbol == symbol)]

    def place(self, account: Account, market: str, symbol: str, side: str, order_type: str, qty: Decimal,
              *, price: Decimal | None = None, tif: str = "GTC", client_id: str = "",
              quote_qty: Decimal | None = None, reduce_only: bool = False, forced: str | None = None) -> Order:
        """Validate, match and settle one order (raises OrderReject)."""
        rules = self.market_rules(market, symbol)
        if client_id and any(o.client_id == client_id for o in self.orders[account.api_key]):
            raise OrderReject("duplicate", client_id)
        book = self.books.book(self.exchange, market, symbol)
        assert book is not None
        levels = sorted(book.asks.items()) if side == "BUY" else sorted(book.bids.items(), reverse=True)
        if forced:
            raise OrderReject(forced, "forced by the emulator's reject_order fault")
        if order_type == "LIMIT":
            if price is None or price <= 0:
                raise OrderReject("tick_size", "a limit order needs a price")
            if _off_step(price, rules.tick):
                raise OrderReject("tick_size", f"price {price} is not a multiple of {rules.tick}")
        if quote_qty is None:
            if qty < rules.min_qty or qty <= 0:
                raise OrderReject("min_qty", f"quantity {qty} below {rules.min_qty}")
            if _off_step(qty, rules.qty_step):
                raise OrderReject("lot_size", f"quantity {qty} is not a multiple of {rules.qty_step}")
            reference = price if order_type == "LIMIT" else (levels[0][0] if levels else None)
            notional = qty * reference if reference is not None else ZERO
        else:
            notional = quote_qty
        if rules.min_notional and notional < rules.min_notional and not reduce_only:
            raise OrderReject("min_notional", f"notional {notional} below {rules.min_notional}")

        limit = price if order_type == "LIMIT" else None
        taken, complete = self._walk(levels, side, qty, limit, quote_qty, rules)
        filled = sum((q for _, q in taken), ZERO)
        cost = sum((p * q for p, q in taken), ZERO)
        fee_rate = TAKER_FEES[(self.exchange, market)]
        rest = ZERO if order_type == "MARKET" or tif in ("IOC", "FOK") else qty - filled
        if tif == "FOK" and not complete:
            taken, filled, cost = [], ZERO, ZERO
        if market == "spot":
            self._check_spot(account, rules, side, order_type, qty, filled, cost, price)
        else:
            self._check_linear(account, symbol, side, filled, cost, fee_rate, reduce_only)

        order = Order(self.exchange, market, symbol, next(self._order_ids), client_id or self._generated_id(),
                      side, order_type, tif, price, qty if quote_qty is None else filled, quote_qty, reduce_only)
        for fill_price, fill_qty in taken:
            if market == "spot":
                fee_asset = rules.base if side == "BUY" else rules.quote
                fee = (fill_qty if side == "BUY" else fill_price * fill_qty) * fee_rate
            else:
                fee_asset, fee = rules.quote, fill_price * fill_qty * fee_rate
            order.fills.append(Fill(fill_price, fill_qty, fee, fee_asset, next(self._trade_ids)))
            order.fee += fee
            order.fee_asset = fee_asset
        order.filled, order.cost = filled, cost
        if market == "spot":
            self._settle_spot(account, rules, order, rest)
        else:
            self._settle_linear(account, rules, order)
        if rest > 0:
            order.status = "PARTIALLY_FILLED" if filled > 0 else "NEW"
        else:
            order.status = "FILLED" if complete and filled > 0 else "EXPIRED"
        self.orders[account.api_key].append(order)
        return order

    def _generated_id(self) -> str:
        return f"emu{next(self._trade_ids)}"

    @staticmethod
    def _walk(levels: Iterable[tuple[Decimal, Decimal]], side: str, qty: Decimal, limit: Decimal | None,
              quote_qty: Decimal | None, rules: Rules) -> tuple[list[tuple[Decimal, Decimal]], bool]:
        """The (price, qty) taken best-first, and whether the order's size was reached."""
        taken: list[tuple[Decimal, Decimal]] = []
        remaining = qty
        budget = quote_qty
        for price, size in levels:
            if limit is not None and (price > limit if side == "BUY" else price < limit):
                break
            if budget is not None:
                take = min(size, (budget / price).quantize(rules.qty_step or Decimal("1e-8"), ROUND_DOWN))
                if take <= 0:
                    return taken, True
                budget -= take * price
            else:
                if remaining <= 0:
                    break
                take = min(size, remaining)
                remaining -= take
            taken.append((price, take))
        return taken, remaining <= 0 if budget is None else False

    def _check_spot(self, account: Account, rules: Rules, side: str, order_type: str, qty: Decimal,
                    filled: Decimal, cost: Decimal, price: Decimal | None) -> None:
        limit = order_type == "LIMIT" and price is not None
        if side == "BUY":
            need = qty * price if limit and price is not None else cost
            have, asset = account.spot.get(rules.quote, ZERO), rules.quote
        else:
            need, have, asset = qty if limit else filled, account.spot.get(rules.base, ZERO), rules.base
        if need > have:
            raise OrderReject("insufficient_balance", f"{have} {asset} free, {need} needed")

    def _check_linear(self, account: Account, symbol: str, side: str, filled: Decimal, cost: Decimal,
                      fee_rate: Decimal, reduce_only: bool) -> None:
        position = account.positions.get(symbol)
        held = position.qty if position else ZERO
        delta = filled if side == "BUY" else -filled
        if reduce_only and (held == 0 or (held > 0) == (delta > 0) or abs(delta) > abs(held)):
            raise OrderReject("reduce_only", "reduce-only order would increase the position")
        closing = min(abs(held), abs(delta)) if held and (held > 0) != (delta > 0) else ZERO
        opening = abs(delta) - closing
        average = cost / filled if filled else ZERO
        leverage = position.leverage if position else DEFAULT_LEVERAGE[self.exchange]
        need = opening * average / leverage + cost * fee_rate
        available = self.available_margin(account)
        if need > available:
            raise OrderReject("insufficient_balance", f"{available} USDT available, {need} needed")

    def available_margin(self, account: Account) -> Decimal:
        used = sum((abs(p.qty) * p.entry / p.leverage for p in account.positions.values()), ZERO)
        return account.futures.get("USDT", ZERO) - used

    def _settle_spot(self, account: Account, rules: Rules, order: Order, rest: Decimal) -> None:
        wallet = account.spot
        if order.side == "BUY":
            wallet[rules.quote] = wallet.get(rules.quote, ZERO) - order.cost
            wallet[rules.base] = wallet.get(rules.base, ZERO) + order.filled - order.fee
            if rest and order.price is not None:
                self._lock(account, rules.quote, rest * order.price)
        else:
            wallet[rules.base] = wallet.get(rules.base, ZERO) - order.filled
            wallet[rules.quote] = wallet.get(rules.quote, ZERO) + order.cost - order.fee
            if rest:
                self._lock(account, rules.base, rest)

    def _lock(self, account: Account, asset: str, amount: Decimal) -> None:
        account.spot[asset] = account.spot.get(asset, ZERO) - amount
        account.locked[asset] = account.locked.get(asset, ZERO) + amount

    def _settle_linear(self, account: Account, rules: Rules, order: Order) -> None:
        if not order.filled:
            return
        position = account.positions.setdefault(order.symbol, Position(leverage=DEFAULT_LEVERAGE[self.exchange]))
        held, entry = position.qty, position.entry
        delta = order.filled if order.side == "BUY" else -order.filled
        price = order.average
        realised = ZERO
        new_qty = held + delta
        if held == 0 or (held > 0) == (delta > 0):
            entry = (abs(held) * entry + order.filled * price) / abs(new_qty)
        else:
            closing = min(abs(held), abs(delta))
            realised = (price - entry) * closing * (1 if held > 0 else -1)
            if new_qty == 0:
                entry = ZERO
            elif (new_qty > 0) != (held > 0):
                entry = price
        position.qty, position.entry = new_qty, entry
        position.realised += realised - order.fee
        position.updated_ms = now_ms()
        account.futures[rules.quote] = account.futures.get(rules.quote, ZERO) + realised - order.fee

    def cancel(self, account: Account, order: Order) -> Order:
        if not order.is_open:
            raise OrderReject("not_found", f"order {order.order_id} is {order.status}")
        rules = self.rules[order.market][order.symbol]
        rest = order.qty - order.filled
        if order.market == "spot" and rest > 0:
            asset, amount = ((rules.quote, rest * (order.price or ZERO)) if order.side == "BUY"
                             else (rules.base, rest))
            account.locked[asset] = account.locked.get(asset, ZERO) - amount
            account.spot[asset] = account.spot.get(asset, ZERO) + amount
        order.status = "CANCELED"
        order.updated_ms = now_ms()
        return order

    def mark_price(self, market: str, symbol: str) -> Decimal:
        book = self.books.book(self.exchange, market, symbol)
        if book is None:
            return ZERO
        bids, asks = book.top(1)
        if bids and asks:
            return (bids[0][0] + asks[0][0]) / 2
        return (bids or asks or [(ZERO, ZERO)])[0][0]

    def unrealised(self, market: str, symbol: str, position: Position) -> Decimal:
        if not position.qty:
            return ZERO
        return (self.mark_price(market, symbol) - position.entry) * position.qty


def plain(value: Decimal, places: int | None = None) -> str:
    """A Decimal as exchanges print it: fixed point, `places` decimals when given."""
    if places is not None:
        return f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    text = f"{value.normalize():f}"
    return text

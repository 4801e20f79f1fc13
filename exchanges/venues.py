"""The one venue seam: live (ccxt.pro) and paper share a protocol, chosen per exchange.

Everything that places orders (two-leg execution, leg-risk handling, TWAP slices) talks to
a `Venue`. `venue_for(exchange)` hands out a `LiveVenue` when the exchange has trading keys
and a `PaperVenue` otherwise, so paper runs through exactly the same code path as live.

Client order ids are chosen by the caller (deterministic, saved before sending); both
venues are idempotent on them: the exchange rejects a second order with the same id, and
the paper venue returns the order it already has. `fetch_order` finds an order by its
client id, which is how a retried or redelivered task reconciles instead of resending.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import ccxt
from django.conf import settings

from arbsite.errors import ExchangeUnavailable, InsufficientFunds, RiskRejected, ValidationFailed
from arbsite.redis_client import get_async_redis, key
from exchanges import connectivity
from exchanges.contracts import ContractSizeUnknown, contract_size, from_contracts, to_contracts
from exchanges.credentials import credentials_for, has_trading_keys
from exchanges.order_books import OrderBook, aread_book, now_ms
from exchanges.symbols import Exchange, Instrument, MarketType, split_symbol
from exchanges.throttle import throttled_call

logger = logging.getLogger("exchanges.venues")

ZERO = Decimal(0)


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"  # always immediate-or-cancel here: execution never rests orders


class OrderStatus(StrEnum):
    """Our reading of an order, whatever the venue calls it."""

    OPEN = "open"  # still working (live limit orders only, until cancelled)
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"  # terminal: the rest was cancelled
    CANCELED = "canceled"  # terminal with nothing filled
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self is not OrderStatus.OPEN


@dataclass(frozen=True, slots=True)
class VenueFill:
    price: Decimal
    qty: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class OrderResult:
    """An order as the venue reports it; `fee` is in `fee_currency` (quote for paper)."""

    exchange: Exchange
    instrument: Instrument
    client_order_id: str
    order_id: str | None
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None  # limit price sent
    status: OrderStatus
    filled: Decimal
    average: Decimal | None
    fee: Decimal
    fee_currency: str | None
    paper: bool
    ts: int = field(default_factory=now_ms)
    fills: tuple[VenueFill, ...] = ()

    @property
    def notional(self) -> Decimal:
        return (self.average or ZERO) * self.filled

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange.value,
            "instrument": self.instrument.key,
            "clientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "side": self.side.value,
            "type": self.type.value,
            "amount": str(self.amount),
            "price": None if self.price is None else str(self.price),
            "status": self.status.value,
            "filled": str(self.filled),
            "average": None if self.average is None else str(self.average),
            "fee": str(self.fee),
            "feeCurrency": self.fee_currency,
            "paper": self.paper,
            "ts": self.ts,
            "fills": [[str(f.price), str(f.qty), str(f.fee)] for f in self.fills],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderResult:
        return cls(
            exchange=Exchange(data["exchange"]),
            instrument=Instrument.parse_key(data["instrument"]),
            client_order_id=data["clientOrderId"],
            order_id=data.get("orderId"),
            side=Side(data["side"]),
            type=OrderType(data["type"]),
            amount=Decimal(data["amount"]),
            price=None if data.get("price") is None else Decimal(data["price"]),
            status=OrderStatus(data["status"]),
            filled=Decimal(data["filled"]),
            average=None if data.get("average") is None else Decimal(data["average"]),
            fee=Decimal(data["fee"]),
            fee_currency=data.get("feeCurrency"),
            paper=bool(data.get("paper")),
            ts=int(data.get("ts") or 0),
            fills=tuple(VenueFill(Decimal(p), Decimal(q), Decimal(f)) for p, q, f in data.get("fills", [])),
        )


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What an order must respect on one market: precision, minimums, taker fee.

    `min_amount` is in base units (ccxt's minimum is in contracts on contract markets and is
    converted here); `min_notional` is in the quote currency, as ccxt's cost limits always are.
    `contract_size` is base units per ccxt amount unit (1 except on OKX-style swaps).
    """

    instrument: Instrument
    unified: str
    taker_fee: Decimal
    min_amount: Decimal | None
    min_notional: Decimal | None
    contract_size: Decimal


class Venue(Protocol):
    """What execution needs from an exchange account, live or paper."""

    exchange: Exchange
    paper: bool

    async def rules(self, instrument: Instrument) -> MarketRules: ...

    def amount_to_precision(self, instrument: Instrument, qty: Decimal) -> Decimal: ...

    def price_to_precision(self, instrument: Instrument, price: Decimal) -> Decimal: ...

    async def create_order(
        self, instrument: Instrument, side: Side | str, qty: Decimal, *,
        order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None, client_order_id: str,
    ) -> OrderResult: ...

    async def fetch_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None: ...

    async def cancel_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None: ...

    async def fetch_balance(self) -> dict[str, Decimal]: ...

    async def fetch_positions(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- precision and minimums


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def market_contract_size(instrument: Instrument, market: Mapping[str, Any]) -> Decimal:
    """The market's contract size; a contract market without one cannot be traded safely."""
    try:
        return contract_size(market)
    except ContractSizeUnknown as exc:
        raise ExchangeUnavailable(f"{instrument.exchange}: {exc}") from exc


def rules_from_market(instrument: Instrument, market: Mapping[str, Any]) -> MarketRules:
    """ccxt's market -> our rules, in base units (ccxt's amount minimum is in contracts)."""
    limits = market.get("limits") or {}
    taker = _dec(market.get("taker"))
    if taker is None:
        raise ExchangeUnavailable(f"{instrument.exchange}: no taker fee known for {instrument.symbol}")
    size = market_contract_size(instrument, market)
    min_contracts = _dec((limits.get("amount") or {}).get("min"))
    return MarketRules(
        instrument=instrument,
        unified=str(market["symbol"]),
        taker_fee=taker,
        min_amount=None if min_contracts is None else from_contracts(min_contracts, size),
        # ccxt's cost is quote currency on every market (contracts x contractSize x price): no conversion.
        min_notional=_dec((limits.get("cost") or {}).get("min")),
        contract_size=size,
    )


def check_minimums(rules: MarketRules, qty: Decimal, price: Decimal | None) -> None:
    """Refuse before sending what the exchange would refuse (size zero, min amount, min notional)."""
    name = f"{rules.instrument.exchange} {rules.instrument.symbol}"
    if qty <= 0:
        if rules.contract_size != 1:
            base = split_symbol(rules.instrument.symbol)[0]
            raise RiskRejected(f"{name}: quantity is less than one lot at the market's precision "
                               f"(orders are in contracts of {rules.contract_size.normalize():f} {base})")
        raise RiskRejected(f"{name}: quantity rounds to zero at the market's precision")
    if rules.min_amount is not None and qty < rules.min_amount:
        raise RiskRejected(f"{name}: quantity {qty} below the minimum {rules.min_amount}")
    if rules.min_notional is not None and price is not None and qty * price < rules.min_notional:
        raise RiskRejected(f"{name}: notional {qty * price:.4f} below the minimum {rules.min_notional}")


class _CcxtMarkets:
    """Markets and ccxt's own precision functions, shared by the live and paper venues.

    A venue may be kept for a worker's whole life (`exchanges.sessions`), so it never settles on
    the markets it first saw: every `rules()` goes through the process's market cache (no I/O
    while it is younger than `connectivity.MARKETS_MAX_AGE_SECONDS`, one reload when older), and
    every precision use picks up markets another client reloaded. ccxt's costly `set_markets`
    runs only when the cache holds markets this client does not have.
    """

    def __init__(self, exchange: Exchange, client: Any) -> None:
        self.exchange = exchange
        self.client = client

    async def ensure(self) -> None:
        await connectivity.load_markets(self.client, self.exchange)

    async def rules(self, instrument: Instrument) -> MarketRules:
        await self.ensure()
        return rules_from_market(instrument, connectivity.market_for(self.client.markets, instrument))

    def _current(self) -> dict[str, Any]:
        """The client's markets, first brought up to the process cache's (no I/O)."""
        connectivity.follow_markets(self.client, self.exchange)
        if not self.client.markets:
            raise ExchangeUnavailable(f"{self.exchange}: markets not loaded (call rules() first)")
        markets: dict[str, Any] = self.client.markets
        return markets

    def contract_size(self, instrument: Instrument) -> Decimal:
        """Base units per ccxt amount unit for the leg's market (markets must be loaded)."""
        market = connectivity.market_for(self._current(), instrument)
        return market_contract_size(instrument, market)

    def amount(self, instrument: Instrument, qty: Decimal) -> Decimal:
        """A base qty at ccxt's amount precision, in base units; zero when below one step.

        The precision applies to what ccxt sends: contracts on contract markets. So base ->
        contracts (toward zero), ccxt's truncation on the contract count, then back to base:
        the result is never more than `qty`, and is exactly what `to_contracts` will send.
        """
        size = self.contract_size(instrument)
        contracts = to_contracts(qty, size)
        if contracts <= 0:
            return ZERO
        try:
            text = self.client.amount_to_precision(instrument.unified, format(contracts, "f"))
        except ccxt.InvalidOrder:  # ccxt raises when the amount truncates to zero
            return ZERO
        return from_contracts(Decimal(text), size)

    def price(self, instrument: Instrument, price: Decimal) -> Decimal:
        self._current()
        return Decimal(self.client.price_to_precision(instrument.unified, str(price)))


# --------------------------------------------------------------------------- live


# Per-exchange quirks are data: the params that look an order up by our client id.
FETCH_BY_CLIENT_ID: dict[Exchange, str] = {
    Exchange.BINANCE: "origClientOrderId",
    Exchange.BYBIT: "orderLinkId",
    Exchange.OKX: "clOrdId",
    Exchange.BITGET: "clientOid",
}

_CCXT_STATUS = {"open": OrderStatus.OPEN, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
                "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.CANCELED,
                "rejected": OrderStatus.REJECTED}


def parse_ccxt_order(raw: Mapping[str, Any], exchange: Exchange, instrument: Instrument, *,
                     client_order_id: str, side: Side, order_type: OrderType, amount: Decimal,
                     price: Decimal | None, paper: bool = False,
                     contract_size: Decimal = Decimal(1)) -> OrderResult:
    """A ccxt unified order -> OrderResult in base units (ccxt floats read back through their repr).

    ccxt's `amount`/`filled` are contracts on contract markets: times `contract_size` here.
    `amount` (base) stands in when ccxt reports none. `cost` is quote already (ccxt multiplies
    by the contract size), so the average is cost over the base quantity. Fees are in their own
    currency: no conversion.
    """
    filled = from_contracts(_dec(raw.get("filled")) or ZERO, contract_size)
    average = _dec(raw.get("average"))
    if average is None and filled > 0:
        cost = _dec(raw.get("cost"))
        average = cost / filled if cost else _dec(raw.get("price"))
    status = _CCXT_STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.OPEN)
    reported = _dec(raw.get("amount"))
    requested = from_contracts(reported, contract_size) if reported else amount
    if status is OrderStatus.FILLED and filled < requested:
        status = OrderStatus.PARTIALLY_FILLED
    if status is OrderStatus.CANCELED and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    fee_total = ZERO
    fee_currency = None
    for fee in raw.get("fees") or ([raw["fee"]] if raw.get("fee") else []):
        if fee and fee.get("cost") is not None:
            fee_total += _dec(fee["cost"]) or ZERO
            fee_currency = fee.get("currency") or fee_currency
    return OrderResult(
        exchange=exchange, instrument=instrument, client_order_id=str(raw.get("clientOrderId") or client_order_id),
        order_id=str(raw["id"]) if raw.get("id") is not None else None, side=side, type=order_type,
        amount=requested, price=price, status=status, filled=filled, average=average, fee=fee_total,
        fee_currency=fee_currency, paper=paper, ts=int(raw.get("timestamp") or now_ms()),
    )


def position_qty(exchange: Exchange, position: Mapping[str, Any], markets: Mapping[str, Any] | None) -> Decimal:
    """A ccxt position's size in signed base units (short < 0); ccxt counts contracts.

    The contract size is the loaded market's, as for orders and books; a position on a market
    the client does not hold falls back to the size ccxt copied onto the position. A contract
    market without a usable size is EXCHANGE_UNAVAILABLE: better no figure than one 100x off.
    Every reader of live positions (the venue, the account endpoint) goes through here.
    """
    contracts = _dec(position.get("contracts")) or ZERO
    if contracts == 0:
        return ZERO
    market = (markets or {}).get(str(position.get("symbol")))
    try:
        size = contract_size(market) if market is not None else (_dec(position.get("contractSize")) or Decimal(1))
        qty = from_contracts(contracts, size)
    except ContractSizeUnknown as exc:
        raise ExchangeUnavailable(f"{exchange}: {exc}") from exc
    return -qty if position.get("side") == "short" else qty


@functools.lru_cache(maxsize=4)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    """One TLS context per process (what ccxt builds for each client; it holds no per-loop state)."""
    return ssl.create_default_context(cafile=cafile)


# What ccxt learnt about an account's mode (Bybit unified or not), per process and API key.
_ACCOUNT_MODE_OPTIONS = ("enableUnifiedMargin", "enableUnifiedAccount", "unifiedMarginStatus")
_ACCOUNT_MODE: dict[tuple[Exchange, str], dict[str, Any]] = {}


class LiveVenue:
    """An exchange account over ccxt.pro; every call goes through `connectivity.call`."""

    paper = False

    def __init__(self, exchange: Exchange | str, credentials: dict[str, str] | None = None) -> None:
        self.exchange = Exchange(exchange)
        self.client = connectivity.async_client(self.exchange, credentials or trading_credentials(self.exchange))
        # Every call is budgeted by the throttle (per exchange, shared in Redis). ccxt's own
        # per-client limiter only delayed this venue's next request by the last one's weight: an
        # entry order waited ~0.4 s behind the balance read (seen at the venue emulator).
        self.client.enableRateLimit = False
        if self.client.verify and self.client.ssl_context is None:  # loading the CA file costs ~40 ms a client
            self.client.ssl_context = _ssl_context(self.client.cafile)
        # Bybit: ccxt asks for the account mode (2 requests) once per client; remember its answer.
        self.client.options.update(_ACCOUNT_MODE.get((self.exchange, str(self.client.apiKey)), {}))
        self._markets = _CcxtMarkets(self.exchange, self.client)
        self._sent: dict[str, tuple[Side, OrderType, Decimal, Decimal | None]] = {}

    async def rules(self, instrument: Instrument) -> MarketRules:
        return await self._markets.rules(instrument)

    def amount_to_precision(self, instrument: Instrument, qty: Decimal) -> Decimal:
        return self._markets.amount(instrument, qty)

    def price_to_precision(self, instrument: Instrument, price: Decimal) -> Decimal:
        return self._markets.price(instrument, price)

    async def _call(self, fn: Any, *args: Any, idempotent: bool = True,
                    passthrough: tuple[type[BaseException], ...] = ()) -> Any:
        """Every private call: within the exchange's request budget, retried with backoff, bans halt."""
        result = await throttled_call(self.exchange.value, fn, *args, idempotent=idempotent, passthrough=passthrough)
        options = getattr(self.client, "options", None) or {}
        mode = {k: options[k] for k in _ACCOUNT_MODE_OPTIONS if options.get(k) is not None}
        if mode:
            _ACCOUNT_MODE[(self.exchange, str(getattr(self.client, "apiKey", "")))] = mode
        return result

    async def create_order(
        self, instrument: Instrument, side: Side | str, qty: Decimal, *,
        order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None, client_order_id: str,
    ) -> OrderResult:
        side, order_type = Side(side), OrderType(order_type)
        rules = await self.rules(instrument)
        amount = self.amount_to_precision(instrument, qty)
        limit = self.price_to_precision(instrument, price) if price is not None else None
        check_minimums(rules, amount, limit)
        # The desk's base qty -> ccxt's amount unit (contracts on OKX-style swaps); exact, since
        # `amount` came back from a whole number of lots.
        contracts = to_contracts(amount, rules.contract_size)
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if order_type is OrderType.LIMIT:
            params["timeInForce"] = "IOC"
        # Not idempotent: only a 429 is retried; any other failure is reconciled by client id.
        raw = await self._call(
            self.client.create_order, rules.unified, order_type.value, side.value,
            float(contracts), None if limit is None else float(limit), params, idempotent=False,
        )
        self._sent[client_order_id] = (side, order_type, amount, limit)
        result = parse_ccxt_order(raw, self.exchange, instrument, client_order_id=client_order_id, side=side,
                                  order_type=order_type, amount=amount, price=limit,
                                  contract_size=rules.contract_size)
        # Many venues acknowledge before matching: read the order back for its fills.
        if result.status is OrderStatus.OPEN or result.filled == 0:
            fetched = await self.fetch_order(instrument, client_order_id)
            if fetched is not None:
                return fetched
        return result

    async def fetch_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        rules = await self.rules(instrument)
        try:
            raw = await self._call(self._fetch_by_client_id, instrument, rules.unified, client_order_id,
                                   passthrough=(ccxt.OrderNotFound,))
        except ccxt.OrderNotFound:
            return None
        side = Side(str(raw.get("side") or "buy").lower())
        order_type = OrderType.LIMIT if str(raw.get("type") or "").lower() == "limit" else OrderType.MARKET
        return parse_ccxt_order(raw, self.exchange, instrument, client_order_id=client_order_id, side=side,
                                order_type=order_type, amount=ZERO, price=_dec(raw.get("price")),
                                contract_size=rules.contract_size)

    async def _fetch_by_client_id(self, instrument: Instrument, unified: str, client_order_id: str) -> Any:
        if self.exchange is Exchange.BYBIT:
            # ccxt's bybit fetch_order always sends an orderId; ask v5 by orderLinkId directly
            # (realtime covers open orders and the account's recent closed ones).
            market = self.client.market(unified)
            response = await self.client.privateGetV5OrderRealtime({
                "category": "linear" if instrument.type is MarketType.LINEAR else "spot",
                "symbol": market["id"], FETCH_BY_CLIENT_ID[self.exchange]: client_order_id,
            })
            rows = ((response or {}).get("result") or {}).get("list") or []
            if not rows:
                raise ccxt.OrderNotFound(f"bybit: no order {client_order_id}")
            return self.client.parse_order(rows[0], market)
        return await self.client.fetch_order(None, unified, {FETCH_BY_CLIENT_ID[self.exchange]: client_order_id})

    async def cancel_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        rules = await self.rules(instrument)
        params = {FETCH_BY_CLIENT_ID[self.exchange]: client_order_id, "clientOrderId": client_order_id}
        try:
            await self._call(self.client.cancel_order, None, rules.unified, params, passthrough=(ccxt.OrderNotFound,))
        except ccxt.OrderNotFound:
            pass  # already done (filled, expired) or never arrived: the fetch below says which
        return await self.fetch_order(instrument, client_order_id)

    async def fetch_balance(self) -> dict[str, Decimal]:
        raw = await self._call(self.client.fetch_balance)
        free = raw.get("free") or {}
        return {asset: d for asset, value in free.items() if (d := _dec(value)) is not None and d != 0}

    async def fetch_positions(self) -> list[dict[str, Any]]:
        """Open positions, `qty` in base units (signed; ccxt counts contracts)."""
        raw = await self._call(self.client.fetch_positions)
        markets = getattr(self.client, "markets", None)
        out = []
        for pos in raw:
            qty = position_qty(self.exchange, pos, markets)
            if qty == 0:
                continue
            out.append({"symbol": pos.get("symbol"), "qty": qty, "entryPrice": _dec(pos.get("entryPrice")),
                        "paper": False})
        return out

    async def close(self) -> None:
        await self.client.close()


def trading_credentials(exchange: Exchange) -> dict[str, str]:
    """ccxt kwargs for the account (env first, then stored keys; see `exchanges.credentials`)."""
    return credentials_for(exchange) or {}


# --------------------------------------------------------------------------- paper

DEFAULT_STARTING_FUNDS = {"USDT": "100000", "BTC": "1", "ETH": "10"}


def paper_starting_funds(exchange: Exchange) -> dict[str, Decimal]:
    """`PAPER_STARTING_FUNDS`: either `{asset: amount}` for every exchange, or `{exchange: {asset: amount}}`."""
    configured: Mapping[str, Any] = getattr(settings, "PAPER_STARTING_FUNDS", DEFAULT_STARTING_FUNDS)
    if exchange.value in configured and isinstance(configured[exchange.value], Mapping):
        configured = configured[exchange.value]
    elif any(isinstance(v, Mapping) for v in configured.values()):
        configured = {}
    return {asset: Decimal(str(amount)) for asset, amount in configured.items()}


def walk_book(levels: list[tuple[Decimal, Decimal]], qty: Decimal, side: Side,
              limit: Decimal | None) -> list[tuple[Decimal, Decimal]]:
    """Take up to `qty` from best-first levels, not past `limit`: the paper matching engine."""
    taken: list[tuple[Decimal, Decimal]] = []
    remaining = qty
    for price, size in levels:
        if remaining <= 0:
            break
        if size <= 0:
            continue
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        take = min(size, remaining)
        taken.append((price, take))
        remaining -= take
    return taken


class PaperVenue:
    """Fills against the live cached book; balances and orders kept per exchange in Redis.

    Market orders walk the whole side; limit orders (IOC) walk it up to the limit price; a
    short book fills partially and the rest is cancelled. The taker fee of the market is
    charged in the quote currency. `PAPER_LATENCY_MS` delays the fill (the book is read
    after the delay, as a real order would meet it). Linear contracts keep a signed
    position with an average entry; realised PnL goes to the quote balance. Quantities
    are base units throughout: cached books of contract markets (OKX swaps, whose ccxt
    sizes are contracts) were converted to base when built (`OrderBook.from_ccxt`), and
    amounts are rounded to whole lots of contracts (`_CcxtMarkets.amount`), as live would send.
    """

    paper = True

    def __init__(self, exchange: Exchange | str) -> None:
        self.exchange = Exchange(exchange)
        self.client = connectivity.async_client(self.exchange)  # public: markets only
        self._markets = _CcxtMarkets(self.exchange, self.client)
        self._redis: Any = None

    # -- keys
    def _k(self, *parts: str) -> str:
        return key("paper", self.exchange.value, *parts)

    def _r(self) -> Any:
        if self._redis is None:
            self._redis = get_async_redis()
        return self._redis

    async def rules(self, instrument: Instrument) -> MarketRules:
        return await self._markets.rules(instrument)

    def amount_to_precision(self, instrument: Instrument, qty: Decimal) -> Decimal:
        return self._markets.amount(instrument, qty)

    def price_to_precision(self, instrument: Instrument, price: Decimal) -> Decimal:
        return self._markets.price(instrument, price)

    async def _ensure_funds(self) -> None:
        redis = self._r()
        if await redis.hsetnx(self._k("balances"), "__initialised__", "1"):
            funds = paper_starting_funds(self.exchange)
            if funds:
                await redis.hset(self._k("balances"), mapping={a: str(v) for a, v in funds.items()})

    async def create_order(
        self, instrument: Instrument, side: Side | str, qty: Decimal, *,
        order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None, client_order_id: str,
    ) -> OrderResult:
        side, order_type = Side(side), OrderType(order_type)
        if order_type is OrderType.LIMIT and price is None:
            raise ValidationFailed("a limit order needs a price")
        rules = await self.rules(instrument)
        amount = self.amount_to_precision(instrument, qty)
        limit = self.price_to_precision(instrument, price) if price is not None else None
        existing = await self.fetch_order(instrument, client_order_id)
        if existing is not None:
            return existing
        latency = float(getattr(settings, "PAPER_LATENCY_MS", 20)) / 1000
        if latency > 0:
            await asyncio.sleep(latency)
        redis = self._r()
        async with redis.lock(self._k("lock"), timeout=10, blocking_timeout=10):
            existing = await self.fetch_order(instrument, client_order_id)
            if existing is not None:  # a concurrent duplicate got there first
                return existing
            book = await self._book(instrument)
            reference = limit if limit is not None else (book.best_ask if side is Side.BUY else book.best_bid)
            check_minimums(rules, amount, reference)
            levels = book.asks if side is Side.BUY else book.bids
            taken = walk_book(list(levels), amount, side, limit if order_type is OrderType.LIMIT else None)
            fills = tuple(VenueFill(p, q, p * q * rules.taker_fee) for p, q in taken)
            filled = sum((f.qty for f in fills), ZERO)
            notional = sum((f.price * f.qty for f in fills), ZERO)
            fee = sum((f.fee for f in fills), ZERO)
            if filled == amount:
                status = OrderStatus.FILLED
            elif filled > 0:
                status = OrderStatus.PARTIALLY_FILLED
            else:
                status = OrderStatus.CANCELED
            await self._ensure_funds()
            if filled > 0:
                await self._settle(instrument, side, filled, notional, fee)
            result = OrderResult(
                exchange=self.exchange, instrument=instrument, client_order_id=client_order_id,
                order_id=f"paper-{client_order_id}", side=side, type=order_type, amount=amount, price=limit,
                status=status, filled=filled, average=(notional / filled) if filled else None,
                fee=fee, fee_currency=split_symbol(instrument.symbol)[1], paper=True, fills=fills,
            )
            await redis.set(self._k("orders", client_order_id), json.dumps(result.to_json()))
        logger.info("paper order", extra={"event": "paper_order", "exchange": self.exchange.value,
                                          "symbol": instrument.symbol, "success": filled > 0})
        return result

    async def _book(self, instrument: Instrument) -> OrderBook:
        book = await aread_book(instrument, self._r())
        if book is None:
            raise ExchangeUnavailable(f"no live order book for {instrument.key}; paper fills need one")
        max_age_ms = float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0)) * 1000
        if book.age_ms() > max_age_ms:
            raise ExchangeUnavailable(f"the order book for {instrument.key} is stale ({book.age_ms()} ms)")
        if book.is_crossed:
            raise ExchangeUnavailable(f"the order book for {instrument.key} is crossed")
        return book

    async def _settle(self, instrument: Instrument, side: Side, qty: Decimal, notional: Decimal,
                      fee: Decimal) -> None:
        """Move balances (spot) or the position (linear); refuse what the account cannot pay."""
        redis = self._r()
        base, quote = split_symbol(instrument.symbol)
        balances = {k.decode(): Decimal(v.decode()) for k, v in (await redis.hgetall(self._k("balances"))).items()
                    if k != b"__initialised__"}
        quote_free = balances.get(quote, ZERO)
        if instrument.type is MarketType.SPOT:
            base_free = balances.get(base, ZERO)
            if side is Side.BUY:
                if quote_free < notional + fee:
                    raise InsufficientFunds(f"paper {self.exchange}: {quote_free} {quote} free, "
                                            f"{notional + fee:.8f} needed")
                updates = {quote: quote_free - notional - fee, base: base_free + qty}
            else:
                if base_free < qty:
                    raise InsufficientFunds(f"paper {self.exchange}: {base_free} {base} free, {qty} needed")
                if quote_free + notional < fee:
                    raise InsufficientFunds(f"paper {self.exchange}: cannot pay the fee in {quote}")
                updates = {quote: quote_free + notional - fee, base: base_free - qty}
            await redis.hset(self._k("balances"), mapping={a: str(v) for a, v in updates.items()})
            return
        if quote_free < fee:
            raise InsufficientFunds(f"paper {self.exchange}: {quote_free} {quote} free, fee {fee:.8f} needed")
        raw = await redis.hget(self._k("positions"), instrument.symbol)
        pos = json.loads(raw) if raw else {"qty": "0", "entry": "0"}
        held, entry = Decimal(pos["qty"]), Decimal(pos["entry"])
        delta = qty * side.sign
        price = notional / qty
        realised = ZERO
        if held == 0 or (held > 0) == (delta > 0):
            new_qty = held + delta
            entry = (abs(held) * entry + qty * price) / abs(new_qty)
        else:
            closing = min(abs(held), qty)
            realised = (price - entry) * closing * (1 if held > 0 else -1)
            new_qty = held + delta
            if new_qty != 0 and (new_qty > 0) != (held > 0):
                entry = price  # flipped through zero: the remainder opened at this price
            elif new_qty == 0:
                entry = ZERO
        await redis.hset(self._k("balances"), quote, str(quote_free - fee + realised))
        await redis.hset(self._k("positions"), instrument.symbol,
                         json.dumps({"qty": str(new_qty), "entry": str(entry)}))

    async def fetch_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        raw = await self._r().get(self._k("orders", client_order_id))
        return OrderResult.from_json(json.loads(raw)) if raw else None

    async def cancel_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        """Paper orders are immediate-or-cancel: nothing is left working to cancel."""
        return await self.fetch_order(instrument, client_order_id)

    async def fetch_balance(self) -> dict[str, Decimal]:
        await self._ensure_funds()
        raw = await self._r().hgetall(self._k("balances"))
        return {k.decode(): Decimal(v.decode()) for k, v in raw.items() if k != b"__initialised__"}

    async def fetch_positions(self) -> list[dict[str, Any]]:
        raw = await self._r().hgetall(self._k("positions"))
        out = []
        for symbol, value in raw.items():
            pos = json.loads(value)
            if Decimal(pos["qty"]) != 0:
                out.append({"symbol": symbol.decode(), "qty": Decimal(pos["qty"]),
                            "entryPrice": Decimal(pos["entry"]), "paper": True})
        return out

    async def close(self) -> None:
        await self.client.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def is_paper(exchange: Exchange | str) -> bool:
    return not has_trading_keys(Exchange(exchange))


def venue_for(exchange: Exchange | str) -> Venue:
    """Live when the exchange has trading keys, paper otherwise. The caller closes it."""
    exchange = Exchange(exchange)
    if has_trading_keys(exchange):
        return LiveVenue(exchange)
    return PaperVenue(exchange)


# --------------------------------------------------------------------------- private loop

VenueFactory = Callable[[Exchange], "Venue"]


async def gather_list(*aws: Awaitable[T], return_exceptions: bool = False) -> list[Any]:
    """`asyncio.gather` created inside the running loop (outside it, gather binds another loop)."""
    return list(await asyncio.gather(*aws, return_exceptions=return_exceptions))


class KeptVenues(Protocol):
    """Venues that outlive one runner (`exchanges.sessions.VenueSession`)."""

    def run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T: ...

    def submit(self, awaitable: Awaitable[T]) -> Pending[T]: ...

    def venue(self, exchange: Exchange | str) -> Any: ...

    async def recent_balance(self, venue: Any) -> dict[str, Decimal]: ...


class Pending(Protocol[T_co]):
    """Venue I/O under way while the caller does something else; `result()` waits for it."""

    def result(self, timeout: float | None = None) -> T_co: ...


class _Deferred(Generic[T]):
    """A private loop cannot run beside its caller: the work runs when the result is asked for."""

    def __init__(self, loop: asyncio.AbstractEventLoop, awaitable: Awaitable[T]) -> None:
        self.loop, self.awaitable = loop, awaitable

    def result(self, timeout: float | None = None) -> T:
        return self.loop.run_until_complete(self.awaitable)


class VenueLoop:
    """Venue I/O for synchronous code: database work stays synchronous, venue calls run with `run(...)`.

    With a `session` (the worker's kept venues) calls run on the session's loop and venues stay open
    after `close()`; without one, a private loop and venues opened by `factory` for this runner alone
    (tests hand in their own venues that way). Execution and TWAP slice runners both build on it.
    """

    def __init__(self, factory: VenueFactory, session: KeptVenues | None = None) -> None:
        self.factory = factory
        self.session = session
        self.loop = asyncio.new_event_loop() if session is None else None
        self.venues: dict[Exchange, Venue] = {}

    def run(self, awaitable: Awaitable[T]) -> T:
        if self.session is not None:
            return self.session.run(awaitable)
        assert self.loop is not None
        return self.loop.run_until_complete(awaitable)

    def submit(self, awaitable: Awaitable[T]) -> Pending[T]:
        """Start venue I/O and return at once (kept venues run it beside the caller's database work)."""
        if self.session is not None:
            return self.session.submit(awaitable)
        assert self.loop is not None
        return _Deferred(self.loop, awaitable)

    def venue(self, exchange: Exchange) -> Venue:
        if exchange not in self.venues:
            if self.session is not None:
                self.venues[exchange] = self.session.venue(exchange)
                return self.venues[exchange]

            async def make() -> Venue:
                return self.factory(exchange)

            self.venues[exchange] = self.run(make())
        return self.venues[exchange]

    async def book(self, instrument: Instrument) -> OrderBook | None:
        """The cached book; a kept session reads it over its loop's pooled Redis connection."""
        if self.session is not None:
            from arbsite.redis_client import loop_redis

            return await aread_book(instrument, loop_redis())
        return await aread_book(instrument)

    async def balance(self, exchange: Exchange) -> dict[str, Decimal]:
        """Free balances for the risk gate (open the venue with `venue()` first, off the loop).

        A kept venue answers with the account's standing reading when no order went out since and
        it is young enough (see `exchanges.balances`); otherwise, and without a session, a REST read.
        """
        venue = self.venues[exchange]
        if self.session is not None:
            return await self.session.recent_balance(venue)
        return await venue.fetch_balance()

    def close(self) -> None:
        if self.loop is None:
            return  # kept venues stay open for the next runner
        try:
            if self.venues:
                self.run(gather_list(*(v.close() for v in self.venues.values()), return_exceptions=True))
        finally:
            self.loop.close()

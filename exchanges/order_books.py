"""Order books as the desk sees them, and their Redis store (books + stream status).

Prices and sizes stay `Decimal` in memory and leave as strings, so `"68000.1"` is never
turned into `68000.09999999`. ccxt hands us floats; we rebuild the exchange's decimal from
the float's shortest repr and snap it to the market's tick/step, which is exact for any
value the exchange could have sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.conf import settings

from arbsite.redis_client import get_async_redis, get_redis, key
from exchanges.contracts import ONE, contract_size, from_contracts
from exchanges.symbols import Exchange, Instrument, MarketType

Level = tuple[Decimal, Decimal]

# ccxt precision modes (ccxt.base.decimal_to_precision).
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4

# Books older than this are gone from Redis altogether (the API refetches long before).
BOOK_KEY_EXPIRY_SECONDS = 300
STREAMS_HASH = ("marketdata", "streams")
EXCHANGE_STATUS_HASH = ("exchanges", "status")


def now_ms() -> int:
    return int(time.time() * 1000)


def format_decimal(value: Decimal) -> str:
    """Plain notation, no exponent, no padding zeros: Decimal('6.8E+4') -> '68000'."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _quantum(precision: Any, mode: int) -> Decimal | None:
    """The smallest step a market allows, from ccxt's `precision` entry."""
    if precision is None:
        return None
    try:
        if mode == TICK_SIZE:
            step = Decimal(repr(float(precision))) if isinstance(precision, float) else Decimal(str(precision))
            return step if step > 0 else None
        if mode == DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(precision))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return None  # significant digits: no fixed step, the float repr is already the shortest form


def to_decimal(value: Any, step: Decimal | None = None) -> Decimal:
    """A ccxt float (or exchange string) as the exchange's decimal, snapped to `step`."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        number = Decimal(str(value))
    if step is not None and step > 0:
        number = (number / step).to_integral_value() * step
    return number.normalize() if number != 0 else Decimal(0)


@dataclass(slots=True)
class OrderBook:
    """One instrument's book, best level first on each side."""

    exchange: Exchange
    symbol: str
    type: MarketType
    bids: list[Level]
    asks: list[Level]
    ts: int | None  # exchange timestamp, ms
    received_ts: int = field(default_factory=now_ms)  # our receive time, ms
    nonce: int | None = None
    venue: str = "live"
    source: str = "stream"

    @property
    def instrument(self) -> Instrument:
        return Instrument(self.exchange, self.symbol, self.type)

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    @property
    def is_crossed(self) -> bool:
        """Best bid at or above best ask: a broken book (missed update), never tradable."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask

    def trimmed(self, depth: int | None = None) -> OrderBook:
        depth = depth or settings.ORDER_BOOK_DEPTH
        return OrderBook(
            self.exchange, self.symbol, self.type, self.bids[:depth], self.asks[:depth],
            self.ts, self.received_ts, self.nonce, self.venue, self.source,
        )

    def age_ms(self, at_ms: int | None = None) -> int:
        return max(0, (at_ms if at_ms is not None else now_ms()) - self.received_ts)

    def to_contract(self) -> dict[str, Any]:
        """The API contract's book: strings for prices and sizes, plus where it came from."""
        return {
            "exchange": self.exchange.value,
            "symbol": self.symbol,
            "type": self.type.value,
            "bids": [[format_decimal(p), format_decimal(s)] for p, s in self.bids],
            "asks": [[format_decimal(p), format_decimal(s)] for p, s in self.asks],
            "ts": self.ts,
            "receivedTs": self.received_ts,
            "nonce": self.nonce,
            "venue": self.venue,
            "source": self.source,
        }

    @classmethod
    def from_contract(cls, data: dict[str, Any]) -> OrderBook:
        return cls(
            exchange=Exchange(data["exchange"]),
            symbol=data["symbol"],
            type=MarketType(data.get("type", "spot")),
            bids=_levels(data.get("bids", [])),
            asks=_levels(data.get("asks", [])),
            ts=data.get("ts"),
            received_ts=int(data.get("receivedTs") or 0),
            nonce=data.get("nonce"),
            venue=data.get("venue", "live"),
            source=data.get("source", "stream"),
        )

    @classmethod
    def from_ccxt(
        cls,
        raw: dict[str, Any],
        instrument: Instrument,
        market: dict[str, Any] | None = None,
        precision_mode: int = TICK_SIZE,
        *,
        depth: int | None = None,
        venue: str = "live",
        source: str = "stream",
        received_ts: int | None = None,
    ) -> OrderBook:
        """A ccxt order book (float levels) -> OrderBook with exact decimals, top `depth` levels.

        Sizes leave in base units: ccxt's sizes on a contract market are contracts (OKX swaps),
        snapped to the market's lot step and then multiplied by its contract size. Pass the
        ccxt `market` for every contract market; without one sizes are taken as base units.
        """
        depth = depth or settings.ORDER_BOOK_DEPTH
        precision = (market or {}).get("precision") or {}
        price_step = _quantum(precision.get("price"), precision_mode)
        amount_step = _quantum(precision.get("amount"), precision_mode)
        size = contract_size(market)
        received = received_ts if received_ts is not None else now_ms()
        return cls(
            exchange=instrument.exchange,
            symbol=instrument.symbol,
            type=instrument.type,
            bids=_ccxt_levels(raw.get("bids") or [], depth, price_step, amount_step, size),
            asks=_ccxt_levels(raw.get("asks") or [], depth, price_step, amount_step, size),
            # Binance REST depth carries no time: then the book is as of when we received it.
            ts=raw.get("timestamp") or received,
            received_ts=received,
            nonce=raw.get("nonce"),
            venue=venue,
            source=source,
        )


def _ccxt_levels(rows: Iterable[Sequence[Any]], depth: int, price_step: Decimal | None,
                 amount_step: Decimal | None, size: Decimal = ONE) -> list[Level]:
    levels: list[Level] = []
    for row in rows:
        if len(levels) >= depth:
            break
        amount = to_decimal(row[1], amount_step)
        if size != ONE:
            amount = from_contracts(amount, size).normalize()
        levels.append((to_decimal(row[0], price_step), amount))
    return levels


def _levels(rows: Iterable[Sequence[Any]]) -> list[Level]:
    return [(Decimal(str(p)), Decimal(str(s))) for p, s, *_ in rows]


# --- Redis store -------------------------------------------------------------------------


def book_key(instrument: Instrument) -> str:
    return key("book", instrument.exchange.value, instrument.type.value, instrument.symbol)


def _encode(book: OrderBook) -> str:
    return json.dumps(book.to_contract(), separators=(",", ":"))


def write_book(book: OrderBook) -> None:
    get_redis().set(book_key(book.instrument), _encode(book), ex=BOOK_KEY_EXPIRY_SECONDS)


async def awrite_book(book: OrderBook, client: Any = None) -> None:
    redis = client or get_async_redis()
    try:
        await redis.set(book_key(book.instrument), _encode(book), ex=BOOK_KEY_EXPIRY_SECONDS)
    finally:
        if client is None:
            await redis.aclose()


def read_book_raw(instrument: Instrument) -> dict[str, Any] | None:
    """The stored contract dict as is (the API's hot path: no Decimal round trip)."""
    raw = get_redis().get(book_key(instrument))
    return json.loads(raw) if raw else None


def read_book(instrument: Instrument) -> OrderBook | None:
    data = read_book_raw(instrument)
    return OrderBook.from_contract(data) if data else None


async def aread_book(instrument: Instrument, client: Any = None) -> OrderBook | None:
    redis = client or get_async_redis()
    try:
        raw = await redis.get(book_key(instrument))
    finally:
        if client is None:
            await redis.aclose()
    return OrderBook.from_contract(json.loads(raw)) if raw else None


# --- Stream and exchange status ----------------------------------------------------------


class StreamState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    ERROR = "error"


@dataclass(slots=True)
class StreamStatus:
    """What the Exchanges API shows for one watched instrument."""

    instrument: str
    state: StreamState = StreamState.CONNECTING
    last_update_ms: int | None = None  # our receive time of the last book
    exchange_ts: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    reconnects: int = 0
    since_ms: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "state": self.state.value,
            "lastUpdateMs": self.last_update_ms,
            "exchangeTs": self.exchange_ts,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "reconnects": self.reconnects,
            "sinceMs": self.since_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamStatus:
        return cls(
            instrument=data["instrument"],
            state=StreamState(data.get("state", "connecting")),
            last_update_ms=data.get("lastUpdateMs"),
            exchange_ts=data.get("exchangeTs"),
            error_code=data.get("errorCode"),
            error_message=data.get("errorMessage"),
            reconnects=int(data.get("reconnects") or 0),
            since_ms=int(data.get("sinceMs") or 0),
        )


async def awrite_stream_status(redis: Any, status: StreamStatus) -> None:
    await redis.hset(key(*STREAMS_HASH), status.instrument, json.dumps(status.to_dict()))


async def aremove_stream_status(redis: Any, instrument_key: str) -> None:
    await redis.hdel(key(*STREAMS_HASH), instrument_key)


def write_stream_status(status: StreamStatus) -> None:
    get_redis().hset(key(*STREAMS_HASH), status.instrument, json.dumps(status.to_dict()))


def read_stream_statuses() -> dict[str, StreamStatus]:
    raw = get_redis().hgetall(key(*STREAMS_HASH))
    out: dict[str, StreamStatus] = {}
    for name, value in raw.items():
        status = StreamStatus.from_dict(json.loads(value))
        out[name.decode() if isinstance(name, bytes) else name] = status
    return out


def _exchange_outcome(ok: bool, source: str, code: str | None, message: str | None) -> dict[str, Any]:
    at = now_ms()
    return {"ok": ok, "source": source, "ts": at, "code": code, "message": message}


def record_exchange_outcome(exchange: Exchange | str, ok: bool, source: str,
                            code: str | None = None, message: str | None = None) -> None:
    """Last REST/stream outcome per exchange: what `reachable` and `lastError` are made of."""
    name = Exchange(exchange).value
    redis = get_redis()
    outcome = _exchange_outcome(ok, source, code, message)
    pipe = redis.pipeline(transaction=False)
    pipe.hset(key(*EXCHANGE_STATUS_HASH), name, json.dumps(outcome))
    if not ok:
        pipe.hset(key(*EXCHANGE_STATUS_HASH), f"{name}:lastError", json.dumps(outcome))
    pipe.execute()


async def arecord_exchange_outcome(redis: Any, exchange: Exchange | str, ok: bool, source: str,
                                   code: str | None = None, message: str | None = None) -> None:
    name = Exchange(exchange).value
    outcome = _exchange_outcome(ok, source, code, message)
    await redis.hset(key(*EXCHANGE_STATUS_HASH), name, json.dumps(outcome))
    if not ok:
        await redis.hset(key(*EXCHANGE_STATUS_HASH), f"{name}:lastError", json.dumps(outcome))


def read_exchange_outcomes() -> dict[str, dict[str, Any]]:
    raw = get_redis().hgetall(key(*EXCHANGE_STATUS_HASH))
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

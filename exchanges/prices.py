"""Order books for the Prices API: Redis first (fed by the stream), REST through ccxt when stale.

The cache hit is the hot path (one Redis GET, no Decimal round trip). A miss fetches the
book over REST with a fresh async ccxt client (markets shared per process), stores it so
the next request hits, and records the outcome for the Exchanges API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from arbsite import metrics
from arbsite.errors import ApiError, UpstreamError, ValidationFailed
from arbsite.errors import NotFound as NotFoundError
from arbsite.redis_client import get_redis, loop_redis
from exchanges import connectivity
from exchanges.order_books import TICK_SIZE, OrderBook, book_key, record_exchange_outcome, write_book
from exchanges.symbols import Exchange, Instrument, MarketType, SymbolError, normalise_symbol, split_symbol

# Depth limits every supported venue accepts for REST depth.
_REST_LIMITS = (5, 10, 20, 50, 100)


@dataclass(frozen=True, slots=True)
class BookRequest:
    exchange: str
    symbol: str
    type: str = MarketType.SPOT.value


def parse_instrument(exchange: str, symbol: str, market_type: str | None) -> Instrument:
    """Validate the request's exchange/symbol/type: VALIDATION_ERROR or NOT_FOUND otherwise."""
    supported = [str(e) for e in getattr(settings, "SUPPORTED_EXCHANGES", [e.value for e in Exchange])]
    name = (exchange or "").strip().lower()
    if name not in supported:
        raise ValidationFailed(f"unknown exchange {exchange!r}; valid: {', '.join(supported)}")
    kind = (market_type or MarketType.SPOT.value).strip().lower()
    if kind not in {t.value for t in MarketType}:
        raise ValidationFailed(f"unknown type {market_type!r}; valid: {', '.join(t.value for t in MarketType)}")
    try:
        cleaned = normalise_symbol(symbol)
    except SymbolError as exc:
        raise ValidationFailed(str(exc)) from exc
    try:
        split_symbol(cleaned)
    except SymbolError as exc:
        raise NotFoundError(f"{cleaned} is not listed on {name}") from exc
    return Instrument(Exchange(name), cleaned, MarketType(kind))


def ttl_ms() -> float:
    return float(settings.PRICE_CACHE_TTL) * 1000


def present(stored: dict[str, Any], at_ms: int) -> dict[str, Any]:
    """Stored book -> the API's book (contract fields + type, venue, source, ageMs)."""
    return {
        "exchange": stored["exchange"],
        "symbol": stored["symbol"],
        "type": stored.get("type", "spot"),
        "bids": stored["bids"],
        "asks": stored["asks"],
        "ts": stored.get("ts"),
        "venue": stored.get("venue", "live"),
        "source": stored.get("source", "stream"),
        "ageMs": max(0, at_ms - int(stored.get("receivedTs") or 0)),
    }


def _fresh(stored: dict[str, Any] | None, at_ms: int) -> bool:
    return stored is not None and at_ms - int(stored.get("receivedTs") or 0) < ttl_ms()


def get_book(instrument: Instrument) -> dict[str, Any]:
    """One book: from Redis while younger than PRICE_CACHE_TTL, otherwise over REST."""
    raw = get_redis().get(book_key(instrument))
    stored = json.loads(raw) if raw else None
    at = int(time.time() * 1000)
    if stored is not None and _fresh(stored, at):
        metrics.incr("price_cache_hit")
        return present(stored, at)
    metrics.incr("price_cache_miss")
    result = asyncio.run(fetch_books([instrument]))[0]
    if isinstance(result, ApiError):
        raise result
    return present(result.to_contract(), int(time.time() * 1000))


async def aget_book(instrument: Instrument, request: Any = None) -> dict[str, Any]:
    """`get_book` on the web server's event loop: the prices endpoint's hot path.

    With a request, the hit/miss is counted in the request's own metrics round trip.
    """
    raw = await loop_redis().get(book_key(instrument))
    stored = json.loads(raw) if raw else None
    at = int(time.time() * 1000)
    outcome = "price_cache_hit" if stored is not None and _fresh(stored, at) else "price_cache_miss"
    if request is not None:
        metrics.count_with_request(request, outcome)
    else:
        await metrics.arecord({outcome: 1})
    if outcome == "price_cache_hit":
        assert stored is not None
        return present(stored, at)
    result = (await fetch_books([instrument]))[0]
    if isinstance(result, ApiError):
        raise result
    return present(result.to_contract(), int(time.time() * 1000))


def get_books(items: Sequence[Instrument | ApiError]) -> list[dict[str, Any] | ApiError]:
    """Many books: hits from one MGET, the misses fetched concurrently."""
    instruments = [i for i in items if isinstance(i, Instrument)]
    raws = get_redis().mget([book_key(i) for i in instruments]) if instruments else []
    stored_by = {i: (json.loads(r) if r else None) for i, r in zip(instruments, raws, strict=True)}
    at = int(time.time() * 1000)
    misses = [i for i in instruments if not _fresh(stored_by[i], at)]
    hits = len(instruments) - len(misses)
    if hits:
        metrics.incr("price_cache_hit", hits)
    fetched: dict[Instrument, OrderBook | ApiError] = {}
    if misses:
        metrics.incr("price_cache_miss", len(misses))
        unique = list(dict.fromkeys(misses))
        fetched = dict(zip(unique, asyncio.run(fetch_books(unique)), strict=True))
    out: list[dict[str, Any] | ApiError] = []
    now = int(time.time() * 1000)
    for item in items:
        if isinstance(item, ApiError):
            out.append(item)
        elif item in fetched:
            got = fetched[item]
            out.append(got if isinstance(got, ApiError) else present(got.to_contract(), now))
        else:
            stored = stored_by[item]
            assert stored is not None
            out.append(present(stored, now))
    return out


async def fetch_books(instruments: Sequence[Instrument]) -> list[OrderBook | ApiError]:
    """REST depth for each instrument, concurrently; one client per exchange, always closed."""
    clients: dict[Exchange, Any] = {}
    try:
        for instrument in instruments:
            if instrument.exchange not in clients:
                clients[instrument.exchange] = connectivity.async_client(instrument.exchange)
        # Markets first, once per exchange: concurrent first loads would contend on
        # connectivity's per-exchange asyncio.Lock, which must not bind to this short-lived loop.
        await asyncio.gather(*(_preload(c, e) for e, c in clients.items()))
        return list(await asyncio.gather(*(_fetch_one(clients[i.exchange], i) for i in instruments)))
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)


async def _preload(client: Any, exchange: Exchange) -> None:
    try:
        await connectivity.load_markets(client, exchange)
    except Exception:  # noqa: BLE001 - each item reports the failure when it retries
        return


async def _fetch_one(client: Any, instrument: Instrument) -> OrderBook | ApiError:
    exchange = instrument.exchange
    try:
        markets = await connectivity.load_markets(client, exchange)
        market = connectivity.market_for(markets, instrument)
        depth = int(settings.ORDER_BOOK_DEPTH)
        limit = next((n for n in _REST_LIMITS if n >= depth), None)
        raw = await connectivity.call(exchange, client.fetch_order_book, market["symbol"], limit)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the item's error
        error = connectivity.translate(exc, exchange)
        if not isinstance(error, (NotFoundError, ValidationFailed)):
            record_exchange_outcome(exchange, False, "rest", error.error_code, str(error.detail))
        return error
    book = OrderBook.from_ccxt(
        raw, instrument, market, getattr(client, "precisionMode", TICK_SIZE),
        venue=connectivity.venue_label(), source="rest",
    )
    if book.is_crossed or not book.bids or not book.asks:
        # Never serve a broken book as a price.
        record_exchange_outcome(exchange, False, "rest", "UPSTREAM_ERROR", "empty or crossed book")
        return UpstreamError(f"{exchange} returned an empty or crossed book for {instrument.symbol}")
    write_book(book)
    record_exchange_outcome(exchange, True, "rest")
    return book

"""ccxt at the edge: client construction, the emulator switch, shared markets, error mapping.

Production talks to each exchange's production endpoints. When `EXCHANGE_VENUE_URL` is
set (tests and offline demos only) every REST and websocket URL of the client is rewritten
to the local venue emulator as `{venue}/{exchange}/{original host}{original path}`, and
everything that reports data says `venue: "emulator"`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.pro as ccxtpro
from django.conf import settings

from arbsite.errors import (
    ApiError,
    ExchangeUnavailable,
    InsufficientFunds,
    NotFound,
    RateLimited,
    UpstreamError,
    ValidationFailed,
)
from exchanges.symbols import Exchange, Instrument, MarketType, SymbolError

logger = logging.getLogger("exchanges")

T = TypeVar("T")

# Per-exchange quirks are data, not subclasses.
CAPABILITIES: dict[Exchange, dict[str, Any]] = {
    Exchange.BINANCE: {"ccxt_id": "binance", "market_types": ["spot", "linear"], "needs_passphrase": False},
    Exchange.BYBIT: {"ccxt_id": "bybit", "market_types": ["spot", "linear"], "needs_passphrase": False},
    Exchange.OKX: {"ccxt_id": "okx", "market_types": ["spot", "swap"], "needs_passphrase": True},
    Exchange.BITGET: {"ccxt_id": "bitget", "market_types": ["spot", "swap"], "needs_passphrase": True},
}

# Markets are loaded once per process and shared by every client: (markets, currencies, loaded at,
# on the `_now` clock). The markets dict itself is the version: a client remembers the one it was
# handed (`_HELD`) and is handed markets again only when the cache holds another one.
MarketsEntry = tuple[dict[str, Any], dict[str, Any] | None, float]
_MARKETS: dict[Exchange, MarketsEntry] = {}
# asyncio locks belong to one event loop; short-lived loops (sync views) each get their own.
_MARKET_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Exchange, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
# Older markets are reloaded before use: precision, minimums, fees and listings change at the exchange.
MARKETS_MAX_AGE_SECONDS = 3600.0
# A reload that failed keeps the previous markets in use this long before it is tried again.
MARKETS_RETRY_SECONDS = 60.0
_RETRY_AT: dict[Exchange, float] = {}
# The attribute naming, on a ccxt client, the cached markets dict its markets were set from.
_HELD = "_desk_markets_held"


def _now() -> float:
    """The cache's clock (monotonic); a seam for tests that let markets age."""
    return time.monotonic()


def venue_label() -> str:
    return "emulator" if settings.EXCHANGE_VENUE_URL else "live"


def emulated_url(url: str, exchange: str, venue_url: str, hostname: str | None = None) -> str:
    """Map one ccxt URL onto the emulator, keeping the original host in the path."""
    if hostname:
        url = url.replace("{hostname}", hostname)
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return url
    venue = urlsplit(venue_url)
    scheme = "ws" if parts.scheme in ("ws", "wss") else "http"
    path = parts.path or ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{venue.netloc}/{exchange}/{parts.hostname}{path}{query}"


def _rewrite_urls(node: Any, exchange: str, venue_url: str, hostname: str | None) -> Any:
    if isinstance(node, str):
        return emulated_url(node, exchange, venue_url, hostname)
    if isinstance(node, dict):
        return {k: _rewrite_urls(v, exchange, venue_url, hostname) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_urls(v, exchange, venue_url, hostname) for v in node]
    return node


def client_config(exchange: Exchange, credentials: dict[str, str] | None = None) -> dict[str, Any]:
    caps = CAPABILITIES[exchange]
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": settings.EXCHANGE_TIMEOUT_MS,
        "options": {"fetchMarkets": {"types": list(caps["market_types"])}},
    }
    if exchange is Exchange.BINANCE:
        # Spot + USD-M only; never the margin/options/portfolio endpoints.
        config["options"]["fetchMarkets"] = {"types": ["spot", "linear"]}
        config["options"]["warnOnFetchOpenOrdersWithoutSymbol"] = False
    if credentials:
        config.update({k: v for k, v in credentials.items() if v})
    return config


def _point_at_venue(client: Any, exchange: Exchange) -> Any:
    venue_url = settings.EXCHANGE_VENUE_URL
    if venue_url:
        hostname = getattr(client, "hostname", None)
        client.urls["api"] = _rewrite_urls(client.urls["api"], exchange.value, venue_url, hostname)
        if hostname:
            client.hostname = urlsplit(venue_url).netloc
    _share_markets(client, exchange)
    return client


def _share_markets(client: Any, exchange: Exchange) -> None:
    """A new client starts with the process's markets when they are fresh (else its first load reloads)."""
    entry = _fresh(exchange)
    if entry is not None:
        _hand_over(client, entry)


def _fresh(exchange: Exchange) -> MarketsEntry | None:
    """The cached markets when they can be used without asking the exchange; no I/O, two lookups."""
    entry = _MARKETS.get(exchange)
    if entry is None:
        return None
    now = _now()
    if now - entry[2] < MARKETS_MAX_AGE_SECONDS or now < _RETRY_AT.get(exchange, 0.0):
        return entry
    return None


def _hand_over(client: Any, entry: MarketsEntry) -> None:
    """Give `client` the cached markets unless it already holds them: ccxt's set_markets rebuilds every
    market of the exchange (tens of ms for thousands), so it runs once per client per change."""
    if getattr(client, _HELD, None) is entry[0]:
        return
    client.set_markets(entry[0], entry[1])
    setattr(client, _HELD, entry[0])


def follows_cache(client: Any) -> bool:
    """Whether `client`'s markets came from the process's cache (a client that brought its own does not)."""
    return getattr(client, _HELD, None) is not None


def follow_markets(client: Any, exchange: Exchange) -> None:
    """Synchronous and without I/O: a client whose markets are older than the process's gets the new ones.

    For precision helpers that run between awaits; reloading stale markets is `load_markets`' job.
    """
    entry = _MARKETS.get(exchange)
    if entry is not None:
        _hand_over(client, entry)


def async_client(exchange: Exchange | str, credentials: dict[str, str] | None = None) -> Any:
    """A ccxt.pro (async REST + websocket) client; the caller closes it."""
    exchange = Exchange(exchange)
    cls = getattr(ccxtpro, CAPABILITIES[exchange]["ccxt_id"])
    return _point_at_venue(cls(client_config(exchange, credentials)), exchange)


def sync_client(exchange: Exchange | str, credentials: dict[str, str] | None = None) -> Any:
    """A blocking ccxt client, for code that runs in plain threads (Celery tasks, admin)."""
    exchange = Exchange(exchange)
    cls = getattr(ccxt, CAPABILITIES[exchange]["ccxt_id"])
    return _point_at_venue(cls(client_config(exchange, credentials)), exchange)


async def load_markets(client: Any, exchange: Exchange) -> dict[str, Any]:
    """The process's markets for `exchange`, with `client` holding them.

    Fresh (younger than MARKETS_MAX_AGE_SECONDS): no I/O, and `client` is handed them only if it
    holds older ones. Stale or missing: one reload through `client` per event loop (the others
    wait on the lock and take its result). Kept venues call this before every use, so a change
    at the exchange reaches a venue that has lived for days within the max age.
    """
    entry = _fresh(exchange)
    if entry is None:
        locks = _MARKET_LOCKS.setdefault(asyncio.get_running_loop(), {})
        lock = locks.setdefault(exchange, asyncio.Lock())
        async with lock:
            entry = _fresh(exchange)
            if entry is None:
                entry = await _reload(client, exchange)
    _hand_over(client, entry)
    return entry[0]


def markets_age(exchange: Exchange) -> float | None:
    """Seconds since the process's markets for `exchange` were loaded (None: never)."""
    entry = _MARKETS.get(exchange)
    return None if entry is None else _now() - entry[2]


async def refresh_markets(client: Any, exchange: Exchange, *, within: float) -> bool:
    """Reload ahead of time when the markets are missing or would age out within `within` seconds.

    For a background keeper, so the reload never falls on an order's path. True if it reloaded.
    """
    age = markets_age(exchange)
    if age is not None and age < MARKETS_MAX_AGE_SECONDS - within:
        return False
    locks = _MARKET_LOCKS.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(exchange, asyncio.Lock()):
        age = markets_age(exchange)
        if age is not None and age < MARKETS_MAX_AGE_SECONDS - within:
            return False  # someone else just did
        before = _MARKETS.get(exchange)
        entry = await _reload(client, exchange)
    _hand_over(client, entry)
    return before is None or entry[0] is not before[0]


async def _reload(client: Any, exchange: Exchange) -> MarketsEntry:
    """Ask the exchange for its markets (ccxt answers from memory unless told to reload)."""
    previous = _MARKETS.get(exchange)
    try:
        markets = await call(exchange, client.load_markets, True)
    except ApiError as exc:
        if previous is None:
            raise
        # The exchange still decides what it accepts; older markets beat refusing every order.
        _RETRY_AT[exchange] = _now() + MARKETS_RETRY_SECONDS
        logger.warning("markets refresh failed; the previous markets stay in use",
                       extra={"event": "markets_refresh_failed", "exchange": exchange.value,
                              "error_code": exc.error_code})
        return previous
    currencies = client.currencies
    _RETRY_AT.pop(exchange, None)
    if previous is not None and markets == previous[0] and currencies == previous[1]:
        # Nothing changed at the exchange: the same version, younger, so no client is handed it again.
        entry: MarketsEntry = (previous[0], previous[1], _now())
    else:
        entry = (markets, currencies, _now())
    _MARKETS[exchange] = entry
    setattr(client, _HELD, entry[0])  # ccxt set this client's markets (equal to the entry's) while loading
    return entry


def forget_markets() -> None:
    """Drop the process's market cache (tests, or after a venue switch)."""
    _MARKETS.clear()
    _RETRY_AT.clear()
    _MARKET_LOCKS.clear()


def market_for(markets: dict[str, Any], instrument: Instrument) -> dict[str, Any]:
    """The ccxt market for a leg; NOT_FOUND when the exchange does not list it for that type."""
    try:
        unified = instrument.unified
    except SymbolError as exc:
        raise ValidationFailed(str(exc)) from exc
    market = markets.get(unified)
    if market is None:
        raise NotFound(f"{instrument.symbol} ({instrument.type}) is not listed on {instrument.exchange}")
    if instrument.type is MarketType.LINEAR and not market.get("linear"):
        raise NotFound(f"{instrument.symbol} is not a linear perpetual on {instrument.exchange}")
    return market


def translate(exc: BaseException, exchange: Exchange | str) -> ApiError:
    """ccxt's exception taxonomy -> our error codes (order matters: subclasses first)."""
    name = Exchange(exchange).value
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ccxt.RateLimitExceeded):
        return RateLimited(f"{name} rate limit hit; retry shortly")
    if isinstance(exc, ccxt.DDoSProtection):
        # 418 / IP ban / Cloudflare: do not hammer it.
        return RateLimited(f"{name} is refusing requests from this address (rate-limit ban)")
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(f"{name}: insufficient funds")
    if isinstance(exc, ccxt.BadSymbol):
        return NotFound(f"{name}: unknown symbol")
    if isinstance(exc, (ccxt.OperationFailed, asyncio.TimeoutError, OSError)):
        # NetworkError and the exchange's own "internal error, retry" answers (e.g. Binance -1000 on a 5xx).
        return ExchangeUnavailable(f"{name} cannot be reached ({type(exc).__name__})")
    if isinstance(exc, ccxt.AuthenticationError):
        return UpstreamError(f"{name} rejected the API credentials", code="AUTHENTICATION_FAILED")
    if isinstance(exc, (ccxt.BadRequest, ccxt.ArgumentsRequired, ccxt.InvalidOrder)):
        return UpstreamError(f"{name} rejected the request: {_short(exc)}")
    if isinstance(exc, ccxt.ExchangeError):
        return UpstreamError(f"{name} error: {_short(exc)}")
    return UpstreamError(f"{name} error ({type(exc).__name__})")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


async def call(exchange: Exchange | str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Await a ccxt call and translate its failure; every exchange call goes through here."""
    started = time.perf_counter()
    try:
        result = await fn(*args, **kwargs)
    except Exception as exc:
        error = translate(exc, exchange)
        logger.warning(
            "exchange call failed",
            extra={
                "event": "exchange_call_failed",
                "exchange": str(exchange),
                "error_code": error.error_code,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "detail": type(exc).__name__,
            },
        )
        raise error from exc
    return result

"""Exchange-level throttling: a request budget per exchange, backoff with jitter, bans halt.

Every private call of `LiveVenue` goes through `throttled_call(exchange, fn, ...)`:

- **Budget**: at most `RISK_REQUEST_BUDGET_PER_SECOND[exchange]` requests a second across
  every process (a Redis counter per exchange and second), set below what each exchange
  documents for order endpoints. Over budget, the call waits for the next second (bounded).
- **Retries**: 429 and, for idempotent calls, 5xx / network errors are retried with
  exponential backoff and full jitter, up to `RISK_RETRY_ATTEMPTS`. Order placement is
  retried on 429 only: any other failure has an unknown outcome, which the caller
  reconciles by client order id instead of sending again.
- **Bans**: a 418 / IP-ban answer (ccxt's DDoSProtection that is not a plain rate limit)
  is never retried: the exchange is halted for `RISK_BAN_SECONDS` (or the venue's
  Retry-After) and calls fail fast until the halt expires. The halt itself lives here (a
  Redis key every process checks before calling; a process-local one when Redis cannot
  take it), so it holds whoever listens. What else a ban means (pausing the exchange in
  the risk engine, the alert) belongs to whoever registered `on_ban(handler)`: the risk
  engine does, from `trading.risk.install()` in every process that runs Django's apps.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import ccxt
from django.conf import settings

from arbsite import metrics
from arbsite.errors import ExchangeUnavailable, RateLimited
from arbsite.redis_client import key
from exchanges.connectivity import translate

logger = logging.getLogger("exchanges.throttle")

T = TypeVar("T")
Kind = Literal["ban", "rate_limit", "transient", "final"]
# handler(exchange, reason, seconds): called once per ban, in a worker thread (it may use the ORM).
BanHandler = Callable[[str, str, float], None]

# Requests a second per exchange; each well below the venue's documented limit
# (Binance 50 orders/10 s spot, Bybit 10-20 orders/s, OKX 60 orders/2 s, Bitget 10 orders/s).
DEFAULT_BUDGET = {"binance": 8, "bybit": 8, "okx": 10, "bitget": 6}
MAX_BUDGET_WAIT_SECONDS = 5.0

_local_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_local_counts: dict[tuple[str, int], int] = {}
# Bans this process could not write to Redis: exchange -> (monotonic deadline, reason).
_local_bans: dict[str, tuple[float, str]] = {}
_ban_handlers: list[BanHandler] = []


def on_ban(handler: BanHandler) -> None:
    """Run `handler(exchange, reason, seconds)` whenever an exchange bans us (once per handler)."""
    if handler not in _ban_handlers:
        _ban_handlers.append(handler)


def remove_ban_handler(handler: BanHandler) -> None:
    if handler in _ban_handlers:
        _ban_handlers.remove(handler)


def budget(exchange: str) -> int:
    configured = getattr(settings, "RISK_REQUEST_BUDGET_PER_SECOND", None) or {}
    return int(configured.get(exchange, DEFAULT_BUDGET.get(exchange, 5)))


def backoff_delay(attempt: int, *, base: float | None = None, cap: float | None = None,
                  rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    base = float(getattr(settings, "RISK_RETRY_BASE_SECONDS", 0.25)) if base is None else base
    cap = float(getattr(settings, "RISK_RETRY_CAP_SECONDS", 8.0)) if cap is None else cap
    return rng() * min(cap, base * (2 ** min(attempt, 30)))


_BAN_STATUS = re.compile(r"(?<![\w.-])418(?![\w.-])")


def classify(exc: BaseException) -> Kind:
    """What to do about a raw ccxt failure (subclasses first: a rate limit is a DDoSProtection).

    ccxt's Binance raises DDoSProtection for both 429 and 418, with the HTTP status right
    after the exchange id in the message; only a 418 (or an explicit ban) halts the exchange.
    """
    if isinstance(exc, ccxt.RateLimitExceeded):
        return "rate_limit"
    if isinstance(exc, ccxt.DDoSProtection):
        text = str(exc)[:200]
        return "ban" if _BAN_STATUS.search(text) or "banned" in text.lower() else "rate_limit"
    if isinstance(exc, (ccxt.NetworkError, asyncio.TimeoutError, OSError)):
        return "transient"  # 5xx (ExchangeNotAvailable), timeouts, refused connections
    return "final"


def _redis() -> Any:
    loop = asyncio.get_running_loop()
    client = _local_redis.get(loop)
    if client is None:
        from arbsite.redis_client import get_async_redis

        client = get_async_redis()
        _local_redis[loop] = client
    return client


def _ban_key(exchange: str) -> str:
    return key("risk", "ban", exchange)


def _local_ban(exchange: str) -> str | None:
    local = _local_bans.get(exchange)
    if local is not None:
        if time.monotonic() < local[0]:
            return local[1]
        _local_bans.pop(exchange, None)
    return None


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def clear_ban(exchange: str) -> None:
    """An operator lifts a ban halt before it expires (the shared key and this process's own)."""
    from arbsite.redis_client import get_redis

    _local_bans.pop(exchange, None)
    get_redis().delete(_ban_key(exchange))


def _count_locally(exchange: str, second: int) -> int:
    _local_counts[(exchange, second)] = used = _local_counts.get((exchange, second), 0) + 1
    for stale in [k2 for k2 in _local_counts if k2[1] < second - 2]:
        _local_counts.pop(stale, None)
    return used


async def admit(exchange: str) -> None:
    """Refuse while the exchange is halted for a ban, else take one request from this second's budget.

    One Redis round trip (ban key and budget counter together): it runs before every order.
    Over budget, waits for the next second (bounded, then RATE_LIMITED).
    """
    limit = budget(exchange)
    deadline = time.monotonic() + MAX_BUDGET_WAIT_SECONDS
    while True:
        local = _local_ban(exchange)
        if local is not None:
            raise ExchangeUnavailable(local)
        second = int(time.time())
        try:
            k = key("risk", "budget", exchange, str(second))
            pipe = _redis().pipeline(transaction=False)
            pipe.get(_ban_key(exchange))
            pipe.incr(k)
            pipe.expire(k, 3)
            raw, used, _ = await pipe.execute()
            used = int(used)
        except Exception:  # noqa: BLE001 - without Redis, budget per process (bans kept locally above)
            raw, used = None, _count_locally(exchange, second)
        if raw is not None:
            raise ExchangeUnavailable(_text(raw))
        if used <= limit:
            return
        if time.monotonic() >= deadline:
            raise RateLimited(f"{exchange}: request budget ({limit}/s) exhausted; not sent")
        await asyncio.sleep(max(0.01, second + 1 - time.time()))


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def halt_for_ban(exchange: str, exc: BaseException | None = None) -> float:
    """Halt the exchange: the shared Redis key every caller checks, then the registered handlers."""
    seconds = _retry_after(exc) if exc is not None else None
    seconds = max(seconds or 0, float(getattr(settings, "RISK_BAN_SECONDS", 600)))
    reason = f"{exchange} refused requests from this address (HTTP 418 / IP ban); halted for {seconds:.0f}s"
    try:
        await _redis().set(_ban_key(exchange), reason, ex=int(seconds))
    except Exception:
        # Without the shared key other processes cannot know; this one at least keeps the halt.
        _local_bans[exchange] = (time.monotonic() + seconds, reason)
        logger.exception("ban not cached; halted in this process only",
                         extra={"event": "risk_ban_cache_failed", "exchange": exchange})
    handlers = list(_ban_handlers)
    if not handlers:
        logger.critical("%s; no ban handler registered, so only this throttle knows (trading is not paused)",
                        reason, extra={"event": "exchange_ban_unhandled", "exchange": exchange})
    for handler in handlers:
        try:
            await asyncio.to_thread(handler, exchange, reason, seconds)
        except Exception:
            logger.exception("ban handler failed", extra={"event": "risk_ban_store_failed", "exchange": exchange})
    return seconds


async def throttled_call(exchange: str, fn: Callable[..., Awaitable[T]], *args: Any, idempotent: bool = True,
                         attempts: int | None = None, passthrough: tuple[type[BaseException], ...] = (),
                         **kwargs: Any) -> T:
    """Call a ccxt coroutine within the budget, retrying what is safe to retry; errors leave translated.

    Exceptions in `passthrough` (e.g. `ccxt.OrderNotFound` for a lookup) are re-raised as they are.
    """
    exchange = str(getattr(exchange, "value", exchange))
    tries = int(getattr(settings, "RISK_RETRY_ATTEMPTS", 4)) if attempts is None else attempts
    attempt = 0
    while True:
        await admit(exchange)
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        except passthrough:
            raise
        except Exception as exc:
            kind = classify(exc)
            error = translate(exc, exchange)
            logger.warning(
                "exchange call failed",
                extra={"event": "exchange_call_failed", "exchange": exchange, "error_code": error.error_code,
                       "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                       "detail": {"kind": kind, "attempt": attempt, "error": type(exc).__name__}},
            )
            if kind == "ban":
                seconds = await halt_for_ban(exchange, exc)
                raise ExchangeUnavailable(
                    f"{exchange} refused requests from this address (ban); halted for {seconds:.0f}s"
                ) from exc
            retryable = kind == "rate_limit" or (kind == "transient" and idempotent)
            attempt += 1
            if not retryable or attempt >= tries:
                raise error from exc
            delay = backoff_delay(attempt - 1)
            if kind == "rate_limit":
                delay = max(delay, _retry_after(exc) or 0)
            try:
                metrics.incr("exchange_retry")
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(delay)

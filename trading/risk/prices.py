"""Recent mid prices per instrument, and the abnormal-move watcher on the book stream.

The market-data process calls `watcher()(book)` on every update (a registered book
listener). It keeps a short in-memory history per instrument, writes a sample to Redis at
most every `SAMPLE_INTERVAL_MS` (the gate reads those for its own abnormal-move check), and
when the mid moves more than the limit within the window it pauses every pair trading that
instrument (reducing-only) with an alert that says why. Database work goes to a thread:
the ORM never runs on the market-data loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from decimal import Decimal
from typing import Any

from arbsite.redis_client import get_redis, key
from trading.risk import checks

logger = logging.getLogger("trading.risk")

SAMPLE_INTERVAL_MS = 250
HISTORY_SECONDS = 300
LIMITS_REFRESH_SECONDS = 10.0


def _key(exchange: str, market_type: str, symbol: str) -> str:
    return key("risk", "px", exchange, market_type, symbol)


def _member(ts: int, price: Decimal) -> str:
    return f"{ts}:{price}"


def record_sample(exchange: str, market_type: str, symbol: str, ts: int, price: Decimal) -> None:
    redis = get_redis()
    k = _key(exchange, market_type, symbol)
    pipe = redis.pipeline()
    pipe.zadd(k, {_member(ts, price): ts})
    pipe.zremrangebyscore(k, "-inf", ts - HISTORY_SECONDS * 1000)
    pipe.expire(k, HISTORY_SECONDS)
    pipe.execute()


async def arecord_sample(redis: Any, exchange: str, market_type: str, symbol: str, ts: int, price: Decimal) -> None:
    k = _key(exchange, market_type, symbol)
    pipe = redis.pipeline()
    pipe.zadd(k, {_member(ts, price): ts})
    pipe.zremrangebyscore(k, "-inf", ts - HISTORY_SECONDS * 1000)
    pipe.expire(k, HISTORY_SECONDS)
    await pipe.execute()


def samples(exchange: str, market_type: str, symbol: str, *,
            extra: tuple[int, Decimal] | None = None) -> list[tuple[int, Decimal]]:
    """The stored samples (oldest first), plus `extra` (the book the gate just read)."""
    try:
        raw = get_redis().zrange(_key(exchange, market_type, symbol), 0, -1)
    except Exception:  # noqa: BLE001 - no history: the check has nothing to compare
        raw = []
    out: list[tuple[int, Decimal]] = []
    for member in raw:
        text = member.decode() if isinstance(member, bytes) else str(member)
        ts, _, price = text.partition(":")
        try:
            out.append((int(ts), Decimal(price)))
        except (ValueError, ArithmeticError):
            continue
    if extra is not None:
        out.append(extra)
    return sorted(out)


class AbnormalMoveWatcher:
    """A book listener: pauses the pairs on an instrument whose price jumps abnormally."""

    def __init__(self) -> None:
        self.history: dict[str, deque[tuple[int, Decimal]]] = {}
        self.last_write: dict[str, int] = {}
        self.tripped_until: dict[str, int] = {}
        self.limits: tuple[int, Decimal | None] = (10, Decimal(3))
        self.limits_at = 0.0
        self.redis: Any = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def _refresh_limits(self) -> None:
        if time.monotonic() - self.limits_at < LIMITS_REFRESH_SECONDS:
            return
        self.limits_at = time.monotonic()
        try:
            self.limits = await asyncio.to_thread(_global_move_limits)
        except Exception:
            logger.exception("abnormal-move limits not refreshed", extra={"event": "risk_limits_refresh_failed"})

    async def __call__(self, book: Any) -> None:
        if book.best_bid is None or book.best_ask is None or book.is_crossed:
            return
        await self._refresh_limits()
        window, limit = self.limits
        mid = (book.best_bid + book.best_ask) / 2
        ts = int(book.received_ts)
        inst = book.instrument
        name = inst.key
        history = self.history.setdefault(name, deque())
        history.append((ts, mid))
        horizon = ts - max(window, 1) * 1000
        while history and history[0][0] < horizon:
            history.popleft()
        if ts - self.last_write.get(name, 0) >= SAMPLE_INTERVAL_MS:
            self.last_write[name] = ts
            try:
                if self.redis is None:
                    from arbsite.redis_client import get_async_redis

                    self.redis = get_async_redis()
                await arecord_sample(self.redis, inst.exchange.value, inst.type.value, inst.symbol, ts, mid)
            except Exception:  # noqa: BLE001 - the history is a convenience; the pause below is not
                self.redis = None
        rejection = checks.abnormal_move(history, ts, window, limit, label=name)
        if rejection is None or ts < self.tripped_until.get(name, 0):
            return
        self.tripped_until[name] = ts + window * 1000
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(pause_for_abnormal_move, inst.exchange.value, inst.type.value, inst.symbol,
                              rejection.reason)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def _global_move_limits() -> tuple[int, Decimal | None]:
    from django.db import connection

    from trading.risk.gate import effective_limits

    try:
        limits = effective_limits(None)
        return int(limits.abnormal_move_window_seconds or 0), limits.abnormal_move_percent
    finally:
        connection.close()


def pause_for_abnormal_move(exchange: str, market_type: str, symbol: str, reason: str) -> list[str]:
    """Pause (reducing-only) every pair with a leg on the instrument; returns their ids."""
    from django.db import connection
    from django.db.models import Q

    from trading.models import Pair
    from trading.risk.checks import Check
    from trading.risk.gate import pair_scope, pause

    try:
        ids = list(
            Pair.objects.filter(
                Q(leg1_exchange=exchange, leg1_type=market_type, leg1_symbol=symbol)
                | Q(leg2_exchange=exchange, leg2_type=market_type, leg2_symbol=symbol)
            ).values_list("id", flat=True)
        )
        for pair_id in ids:
            pause(pair_scope(pair_id), reason, check=Check.ABNORMAL_MOVE, pair_id=pair_id, exchange=exchange)
        if not ids:
            from trading.risk.alerts import raise_alert

            raise_alert("warning", "RISK_REJECTED", reason, exchange=exchange, check=Check.ABNORMAL_MOVE)
        return ids
    finally:
        if not connection.in_atomic_block:
            connection.close()


_watcher: AbnormalMoveWatcher | None = None


def watcher() -> AbnormalMoveWatcher:
    global _watcher
    if _watcher is None:
        _watcher = AbnormalMoveWatcher()
    return _watcher


async def on_book(book: Any) -> None:
    await watcher()(book)


def install() -> None:
    """Register the watcher with the market-data process (from the trading app's ready)."""
    try:
        from exchanges.market_data import register_book_listener
    except ImportError:
        return
    register_book_listener(on_book)

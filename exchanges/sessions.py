"""Venues kept open for a worker's whole life: ccxt clients, their connections, markets, balances.

Opening a venue per execution cost more than the whole latency budget of an arbitrage (a
ccxt client is ~6 ms to build, its first request pays TCP and TLS set-up, and the risk gate
then waited for two signed balance reads). A `VenueSession` keeps one venue per exchange on
an event loop in a background thread of the worker process; the synchronous runners (database
work stays on their own thread) hand it coroutines with `run()`.

- A venue is reopened when what it was opened with changes: the account's keys (added,
  rotated or removed in Settings) or the venue URL. The caller's thread reads the keys.
- Free balances come from `exchanges.balances` (shared through Redis, voided by every order
  on the account) and are kept warm in the background, so an order does not wait for a
  balance read unless the last one is too old or an order went out since.
- Processes that fork (Celery prefork) get their own session in the child, on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings

from arbsite.memory import freeze_again_if_frozen
from arbsite.redis_client import loop_redis
from exchanges import balances
from exchanges.credentials import credentials_for
from exchanges.order_books import now_ms
from exchanges.symbols import Exchange, Instrument
from exchanges.venues import LiveVenue, MarketRules, OrderResult, OrderType, PaperVenue, Side, Venue, venue_for

logger = logging.getLogger("exchanges.sessions")

T = TypeVar("T")


def _identity(exchange: Exchange, credentials: dict[str, str] | None) -> str:
    """What a kept venue was opened with; a different answer reopens it (keys, venue URL, cache)."""
    where = f"{getattr(settings, 'EXCHANGE_VENUE_URL', '') or ''}|{settings.REDIS_URL}"
    if not credentials:
        return f"paper|{where}"
    secret = "|".join(f"{k}={v}" for k, v in sorted(credentials.items()))
    return "live|" + hashlib.sha256(f"{exchange.value}|{where}|{secret}".encode()).hexdigest()


class KeptVenue:
    """A venue held by a session: every order or cancel voids the account's balance readings."""

    def __init__(self, inner: Venue, session: VenueSession, account: str) -> None:
        self.inner = inner
        self.session = session
        self.account = account
        self.exchange = inner.exchange
        self.paper = inner.paper

    async def rules(self, instrument: Instrument) -> MarketRules:
        return await self.inner.rules(instrument)

    def amount_to_precision(self, instrument: Instrument, qty: Decimal) -> Decimal:
        return self.inner.amount_to_precision(instrument, qty)

    def price_to_precision(self, instrument: Instrument, price: Decimal) -> Decimal:
        return self.inner.price_to_precision(instrument, price)

    async def create_order(
        self, instrument: Instrument, side: Side | str, qty: Decimal, *,
        order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None, client_order_id: str,
    ) -> OrderResult:
        try:
            return await self.inner.create_order(instrument, side, qty, order_type=order_type, price=price,
                                                 client_order_id=client_order_id)
        finally:
            await self.session.balance_changed(self)

    async def fetch_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        return await self.inner.fetch_order(instrument, client_order_id)

    async def cancel_order(self, instrument: Instrument, client_order_id: str) -> OrderResult | None:
        try:
            return await self.inner.cancel_order(instrument, client_order_id)
        finally:
            await self.session.balance_changed(self)

    async def fetch_balance(self) -> dict[str, Decimal]:
        """A fresh REST read, kept for the gate (under the generation taken before asking)."""
        return await self.session.read_balance(self)

    async def fetch_positions(self) -> list[dict[str, Any]]:
        return await self.inner.fetch_positions()

    async def close(self) -> None:
        await self.inner.close()


class VenueSession:
    """One event loop thread and the venues kept on it (see the module docstring)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        self._retired: list[KeptVenue] = []
        self._venues: dict[Exchange, tuple[str, KeptVenue]] = {}
        self._refreshing: set[Exchange] = set()
        self._keeper: concurrent.futures.Future[None] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="venue-session", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    # -- for the synchronous caller
    def run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run `awaitable` on the session's loop and wait for its result (or its exception)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("VenueSession.run() called from the session's own loop")
        return self.submit(awaitable).result(timeout)

    def submit(self, awaitable: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start `awaitable` on the session's loop; the caller goes on and asks `result()` later."""
        if self._closed:
            raise RuntimeError("the venue session is closed")

        async def wait() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self._loop)

    def venue(self, exchange: Exchange | str) -> KeptVenue:
        """The kept venue for `exchange`: live with its current keys, paper without; reopened on change."""
        exchange = Exchange(exchange)
        credentials = credentials_for(exchange)  # this (synchronous) thread reads the keys
        identity = _identity(exchange, credentials)
        with self._lock:
            held = self._venues.get(exchange)
        if held is not None and held[0] == identity:
            return held[1]

        async def open_venue() -> KeptVenue:
            inner: Venue = LiveVenue(exchange, credentials) if credentials else PaperVenue(exchange)
            endpoint = str(getattr(settings, "EXCHANGE_VENUE_URL", "") or "")
            account = balances.account_id(exchange.value, credentials["apiKey"], endpoint) if credentials else "paper"
            return KeptVenue(inner, self, account)

        with self._opening:  # one opener at a time: two threads never open (and race to replace) the same venue
            with self._lock:
                held = self._venues.get(exchange)
            if held is not None and held[0] == identity:
                return held[1]
            venue = self.run(open_venue())
            with self._lock:
                old = self._venues.get(exchange)
                self._venues[exchange] = (identity, venue)
                if self._keeper is None and not venue.paper:
                    self._keeper = asyncio.run_coroutine_threadsafe(self._keep_warm(), self._loop)
        if old is not None:
            # Replaced (keys rotated, venue URL changed): a runner may still be finishing on it.
            with self._lock:
                self._retired.append(old[1])
            self._spawn(self._retire(old[1], float(getattr(settings, "VENUE_RETIRE_SECONDS", 60.0))))
        return venue

    def close(self) -> None:
        """Close every kept venue and stop the loop (process exit)."""
        if self._closed:
            return
        with self._lock:
            venues = [v for _, v in self._venues.values()] + self._retired
            self._venues.clear()
            self._retired = []
        try:
            self.run(_cancel_pending(), timeout=5)  # keep-warm and refreshes first: they use the venues
            self.run(_close_all(venues), timeout=5)
        except Exception:  # noqa: BLE001 - exiting anyway
            logger.warning("venues not closed cleanly", extra={"event": "venue_session_close_failed"})
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- balances (on the loop)
    async def recent_balance(self, venue: KeptVenue) -> dict[str, Decimal]:
        """Free balances for the risk gate: the account's standing reading, else a fresh read."""
        if not venue.paper:  # (paper balances are the book of record, in Redis: read at no cost)
            free = await balances.recent(loop_redis(), venue.exchange.value, venue.account, now_ms(),
                                         balances.max_age_seconds() * 1000)
            if free is not None:
                return dict(free)
        return await self.read_balance(venue)

    async def read_balance(self, venue: KeptVenue) -> dict[str, Decimal]:
        if venue.paper:
            return await venue.inner.fetch_balance()
        redis = loop_redis()
        generation = await balances.generation(redis, venue.exchange.value, venue.account)
        taken = now_ms()
        free = await venue.inner.fetch_balance()
        await balances.store(redis, venue.exchange.value, venue.account, balances.Reading(free, taken, generation))
        return free

    async def balance_changed(self, venue: KeptVenue) -> None:
        """An order or cancel went out: void readings now, read again once the dust settles."""
        if venue.paper:
            return
        try:
            await balances.invalidate(loop_redis(), venue.exchange.value, venue.account)
        except Exception:  # noqa: BLE001 - without Redis the gate reads balances itself (no reading stands)
            logger.warning("balance readings not voided", extra={"event": "balance_invalidate_failed",
                                                                "exchange": venue.exchange.value})
        self._refresh_later(venue, float(getattr(settings, "BALANCE_REFRESH_DELAY_SECONDS", 0.2)))

    def _refresh_later(self, venue: KeptVenue, delay: float) -> None:
        if venue.exchange in self._refreshing:
            return  # one refresh already on its way covers every order before it
        self._refreshing.add(venue.exchange)

        async def refresh() -> None:
            try:
                await asyncio.sleep(delay)
                self._refreshing.discard(venue.exchange)
                await self.read_balance(venue)
            except Exception as exc:  # noqa: BLE001 - the next order reads it itself
                self._refreshing.discard(venue.exchange)
                logger.warning("balance refresh failed", extra={"event": "balance_refresh_failed",
                                                               "exchange": venue.exchange.value,
                                                               "detail": type(exc).__name__})

        self._loop.create_task(refresh())

    async def _keep_warm(self) -> None:
        """Re-read live balances and reload markets before they age out: never on an order's path.

        Venues are kept warm side by side; one that fails is tried again after a growing pause
        (up to a minute), so an unreachable exchange is reported without flooding the log.
        """
        failures: dict[Exchange, int] = {}
        next_try: dict[Exchange, float] = {}
        while True:
            period = max(0.5, balances.max_age_seconds() / 3)
            await asyncio.sleep(period)
            with self._lock:
                venues = [v for _, v in self._venues.values() if not v.paper]
            now = time.monotonic()
            due = [v for v in venues if next_try.get(v.exchange, 0.0) <= now]
            results = await asyncio.gather(*(self._warm(v, period) for v in due), return_exceptions=True)
            for venue, result in zip(due, results, strict=True):
                if isinstance(result, BaseException):
                    n = failures[venue.exchange] = failures.get(venue.exchange, 0) + 1
                    pause = min(60.0, period * 2 ** n)
                    next_try[venue.exchange] = now + pause
                    logger.warning("venue keep-warm failed", extra={
                        "event": "venue_keep_warm_failed", "exchange": venue.exchange.value,
                        "detail": {"error": type(result).__name__, "failures": n, "retryInSeconds": round(pause, 1)}})
                else:
                    failures.pop(venue.exchange, None)
                    next_try.pop(venue.exchange, None)

    async def _warm(self, venue: KeptVenue, period: float) -> None:
        from exchanges import connectivity

        client = getattr(venue.inner, "client", None)
        ahead = float(getattr(settings, "MARKETS_REFRESH_AHEAD_SECONDS", 300))
        if client is not None and await connectivity.refresh_markets(client, venue.exchange, within=ahead):
            freeze_again_if_frozen()
        free = await balances.recent(loop_redis(), venue.exchange.value, venue.account, now_ms(),
                                     balances.max_age_seconds() * 1000 - period * 1000)
        if free is None:
            await self.read_balance(venue)

    async def _retire(self, venue: KeptVenue, delay: float) -> None:
        await asyncio.sleep(delay)
        with self._lock:
            if venue not in self._retired:
                return  # closed with the session meanwhile
            self._retired.remove(venue)
        await venue.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop)


async def _close_all(venues: list[KeptVenue]) -> None:
    await asyncio.gather(*(v.close() for v in venues), return_exceptions=True)


async def _cancel_pending() -> None:
    """Stop the keep-warm loop and any refresh still waiting (the caller's own task excepted)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def warm_up() -> list[str]:
    """Open this process's venues for every exchange with trading keys: markets, connection, balances.

    A worker that will send orders does this once when it starts, so its first opportunity does not
    pay for loading markets or for the first TLS handshake. Returns what could not be warmed (and why);
    an exchange that cannot be reached is logged loudly and tried again by the first order.
    """
    from exchanges import connectivity
    from exchanges.credentials import has_trading_keys

    session = shared_session()
    failed = []
    for exchange in Exchange:
        if not has_trading_keys(exchange):
            continue
        try:
            venue = session.venue(exchange)
            client = getattr(venue.inner, "client", None)
            if client is not None:
                session.run(connectivity.load_markets(client, exchange), timeout=30)
            session.run(session.read_balance(venue), timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported, and the first order tries again
            failed.append(f"{exchange.value}: {type(exc).__name__}: {exc}")
            logger.error("venue warm-up failed", extra={"event": "venue_warm_up_failed", "exchange": exchange.value,
                                                       "detail": str(exc)[:300]})
    return failed


def warm_up_in_background(then: Callable[[], None] | None = None) -> threading.Thread:
    """`warm_up` off the caller's thread (a worker's start must not wait for exchanges), then `then()`."""

    def run() -> None:
        from django.db import connection

        try:
            warm_up()
        finally:
            connection.close()
            if then is not None:
                then()

    thread = threading.Thread(target=run, name="venue-warm-up", daemon=True)
    thread.start()
    return thread


_shared: tuple[int, VenueSession] | None = None
_shared_lock = threading.Lock()


def session_for(factory: Callable[[Exchange], Venue]) -> VenueSession | None:
    """The process's kept venues when `factory` is the production one; None for a test's own venues."""
    return shared_session() if factory is venue_for else None


def shared_session() -> VenueSession:
    """This process's session (a forked child opens its own on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), VenueSession())
        return _shared[1]


@atexit.register
def close_shared_session() -> None:
    """Close this process's session, if it opened one (process exit; tests, between tests)."""
    global _shared
    with _shared_lock:
        held, _shared = _shared, None
    if held is not None and held[0] == os.getpid():
        held[1].close()

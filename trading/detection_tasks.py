"""The beat sweep `trading.poll_pairs`: detection's safety net and its REST fallback.

Every enabled pair is decided on the cached books when they are fresh; a leg whose cached
book is missing or older than the stale limit (its stream is down) is fetched over REST
instead, and stored so the rest of the desk sees it too. Episodes are shared with the
market-data process through Redis, so an opportunity it already announced is not
announced again here. Episodes of pairs no longer enabled, and records whose episode is
gone from Redis (nobody has seen them for `EPISODE_TTL_SECONDS`), are closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from exchanges.order_books import TICK_SIZE, OrderBook, book_key, now_ms, record_exchange_outcome, write_book
from exchanges.symbols import Exchange, Instrument
from trading.detection import (
    Decision,
    DedupPolicy,
    Effects,
    EpisodeStore,
    PairConfig,
    decide,
    load_pair_configs,
    max_book_age_ms,
)

logger = logging.getLogger("trading.detection")

# REST depth limits every supported venue accepts.
_REST_LIMITS = (5, 10, 20, 50, 100)


@dataclass
class SweepResult:
    pairs: int = 0
    passing: int = 0
    emitted: int = 0
    rest_fetched: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    closed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "passing": self.passing, "emitted": self.emitted,
                "restFetched": self.rest_fetched, "errors": self.errors, "closed": self.closed}


@dataclass
class Books:
    books: dict[Instrument, OrderBook] = field(default_factory=dict)
    fees: dict[Instrument, Decimal] = field(default_factory=dict)
    errors: dict[Instrument, str] = field(default_factory=dict)
    fetched: list[Instrument] = field(default_factory=list)


def read_cached(instruments: list[Instrument]) -> dict[Instrument, OrderBook]:
    """The stream's books from Redis, in one round trip."""
    from arbsite.redis_client import get_redis

    if not instruments:
        return {}
    raws = get_redis().mget([book_key(i) for i in instruments])
    return {i: OrderBook.from_contract(json.loads(r)) for i, r in zip(instruments, raws, strict=True) if r}


async def gather_books(instruments: list[Instrument], cached: dict[Instrument, OrderBook],
                       max_age_ms: float) -> Books:
    """Fees for every leg (cached markets) and REST books for the legs whose cache is stale."""
    from exchanges import connectivity
    from trading.spreads import taker_fee_rate

    out = Books()
    at = now_ms()
    stale = {i for i in instruments if i not in cached or at - cached[i].received_ts > max_age_ms}
    out.books.update({i: b for i, b in cached.items() if i not in stale})
    exchanges = list(dict.fromkeys(i.exchange for i in instruments))
    clients = {e: connectivity.async_client(e) for e in exchanges}
    try:
        markets: dict[Exchange, dict[str, Any]] = {}
        for exchange, client in clients.items():  # one at a time: first loads share one lock per loop
            try:
                markets[exchange] = await connectivity.load_markets(client, exchange)
            except Exception as exc:  # noqa: BLE001 - every leg on it reports the failure
                error = connectivity.translate(exc, exchange)
                for instrument in (i for i in instruments if i.exchange is exchange):
                    out.errors[instrument] = f"{error.error_code}: {error.detail}"
        for instrument in instruments:
            if instrument.exchange in markets:
                try:
                    out.fees[instrument] = taker_fee_rate(connectivity.market_for(markets[instrument.exchange],
                                                                                  instrument))
                except Exception as exc:  # noqa: BLE001 - not listed, or no fee: that leg cannot decide
                    out.errors[instrument] = str(getattr(exc, "detail", exc))
        wanted = [i for i in instruments if i in stale and i.exchange in markets and i not in out.errors]
        results = await asyncio.gather(*(_fetch(clients[i.exchange], markets[i.exchange], i) for i in wanted))
        for instrument, result in zip(wanted, results, strict=True):
            if isinstance(result, OrderBook):
                out.books[instrument] = result
                out.fetched.append(instrument)
            else:
                out.errors[instrument] = result
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)
    return out


async def _fetch(client: Any, markets: dict[str, Any], instrument: Instrument) -> OrderBook | str:
    """One REST book through `connectivity.call`; a string says why there is none."""
    from exchanges import connectivity

    exchange = instrument.exchange
    try:
        market = connectivity.market_for(markets, instrument)
        depth = int(getattr(settings, "ORDER_BOOK_DEPTH", 20))
        limit = next((n for n in _REST_LIMITS if n >= depth), _REST_LIMITS[-1])
        raw = await connectivity.call(exchange, client.fetch_order_book, market["symbol"], limit)
    except Exception as exc:  # noqa: BLE001 - the leg reports it
        error = connectivity.translate(exc, exchange)
        await asyncio.to_thread(record_exchange_outcome, exchange, False, "rest", error.error_code, str(error.detail))
        return f"{error.error_code}: {error.detail}"
    book = OrderBook.from_ccxt(raw, instrument, market, getattr(client, "precisionMode", TICK_SIZE),
                               venue=connectivity.venue_label(), source="rest")
    if book.is_crossed or not book.bids or not book.asks:
        return "UPSTREAM_ERROR: empty or crossed book over REST"
    await asyncio.to_thread(write_book, book)
    await asyncio.to_thread(record_exchange_outcome, exchange, True, "rest")
    return book


def _explain(pair: PairConfig, decision: Decision, books: Books) -> Decision:
    """A leg that could not be had says why (REST error), not just 'no order book'."""
    if decision.passing:
        return decision
    for leg, instrument in ((1, pair.leg1), (2, pair.leg2)):
        if instrument in books.errors and (instrument not in books.books or instrument not in books.fees):
            return Decision(pair.id, False, f"leg {leg} ({instrument.key}) unavailable: {books.errors[instrument]}",
                            decision.qty, decision.threshold, decision.ts)
    return decision


def poll_pairs(*, effects: Effects | None = None, store: EpisodeStore | None = None,
               policy: DedupPolicy | None = None, max_age_ms: float | None = None) -> SweepResult:
    """Decide every enabled pair once; announce, record and auto-execute like the event path."""
    from arbsite.redis_client import get_redis

    effects = effects or Effects()
    store = store or EpisodeStore(get_redis(), policy or DedupPolicy.from_settings())
    max_age = max_age_ms if max_age_ms is not None else max_book_age_ms()
    pairs = load_pair_configs()
    instruments = list(dict.fromkeys(leg for p in pairs for leg in p.legs))
    books = asyncio.run(gather_books(instruments, read_cached(instruments), max_age)) if instruments else Books()

    result = SweepResult(pairs=len(pairs), rest_fetched=[i.key for i in books.fetched],
                         errors={i.key: e for i, e in books.errors.items()})
    for pair in pairs:
        decision = decide(pair, books.books.get(pair.leg1), books.books.get(pair.leg2), books.fees.get(pair.leg1),
                          books.fees.get(pair.leg2), max_age_ms=max_age)
        decision = _explain(pair, decision, books)
        try:
            transition = store.apply(decision)
        except Exception:
            logger.exception("shared episode unavailable", extra={"event": "detection_store_failed",
                                                                  "pairId": pair.id})
            continue
        result.passing += int(decision.passing)
        result.emitted += int(transition.emit is not None)
        effects.apply(pair, decision, transition, "sweep")
    result.closed = close_orphans(store, {p.id for p in pairs})
    if result.errors:
        logger.warning("sweep could not get every leg", extra={
            "event": "detection_sweep_degraded", "detail": result.errors})
    return result


def close_orphans(store: EpisodeStore, enabled: set[str]) -> int:
    """End episodes of pairs no longer enabled, and close records whose episode is gone."""
    from trading.opportunity_models import Opportunity

    now = timezone.now()
    open_episodes = store.open_episodes()
    for pair_id in [pid for pid in open_episodes if pid not in enabled]:
        store.end(pair_id)
        del open_episodes[pair_id]
    live_ids = {e.id for e in open_episodes.values()}
    orphans = Opportunity.objects.filter(ended_at__isnull=True).exclude(episode__in=live_ids)
    closed = 0
    for row in orphans:
        why = "pair disabled or deleted" if row.pair_key not in enabled else "no longer observed"
        closed += Opportunity.objects.filter(pk=row.pk, ended_at__isnull=True).update(ended_at=now, end_reason=why)
    return closed


SWEEP_LOCK_SECONDS = 60


@shared_task(name="trading.poll_pairs", ignore_result=True, expires=10)
def poll_pairs_task() -> dict[str, Any]:
    """Beat entry `poll-pairs` (every POLL_PAIRS_SECONDS); expires so a backlog is dropped, not replayed.

    One sweep at a time: a sweep slowed by REST fallbacks must not pile up behind itself
    (the lock expires on its own if a worker dies holding it).
    """
    from arbsite.redis_client import get_redis, key

    redis = get_redis()
    lock = key("detection", "sweep-lock")
    token = uuid.uuid4().hex
    if not redis.set(lock, token, nx=True, ex=SWEEP_LOCK_SECONDS):
        logger.info("sweep skipped: the previous one is still running", extra={"event": "detection_sweep_skipped"})
        return {"skipped": True}
    try:
        return poll_pairs().to_dict()
    finally:
        if redis.get(lock) == token.encode():
            redis.delete(lock)

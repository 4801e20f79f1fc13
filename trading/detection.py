"""Opportunity detection: is a pair's executable net edge over its threshold, and is that news?

Three layers, from pure to wired:

1. `decide(pair, book1, book2, fee1, fee2)` -> `Decision`: the money question, pure. Books
   that are missing, stale or crossed never pass. A top-of-book bound rejects most updates
   before any VWAP walk (the executable edge can only be worse than the best prices).
2. `step(state, decision)` / `Detector`: the news question, pure. An *episode* opens when a
   pair starts passing; it is announced when it appears, again when its direction flips
   (which is a new episode), when its net edge moves materially (`DedupPolicy.material`),
   and at most every `reemit_ms` while it persists; it ends when it stops passing.
3. Wiring: `EpisodeStore` keeps the episode of each pair in Redis so the market-data
   process (`BookListener`, every book update) and the beat sweep (`trading.detection_tasks`)
   share one view and announce an episode once; `Effects` publishes `opportunity`, writes
   the `Opportunity` record (once per episode, updated when it ends) and asks execution to
   run pairs that auto-execute.

The book listener never touches the database per update: it keeps an index instrument ->
pairs refreshed from the database in a thread every few seconds, fees from the process's
cached markets, the latest book of every leg in memory, and a local mirror of the shared
episodes that it reconciles with Redis only on a transition or every `sync_ms`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

from django.conf import settings

from exchanges.order_books import OrderBook, now_ms
from exchanges.symbols import Instrument
from trading.spreads import (
    CONCRETE_DIRECTIONS,
    HUNDRED,
    Direction,
    Evaluation,
    Fill,
    TopSpread,
    evaluate,
    top_of_book_spread,
    vwap,
)

logger = logging.getLogger("trading.detection")

ZERO = Decimal(0)
ONE = Decimal(1)

# The best-price bound and the full evaluation round differently in the last digits: the
# shortcut only rejects what is below the threshold by more than this (percentage points).
BOUND_SLACK = Decimal("1e-9")
# Seconds between database reads of the enabled pairs in the market-data process.
INDEX_REFRESH_SECONDS = 3.0
# How often the market-data process reconciles a quiet pair with the shared episode (ms).
SYNC_MS = 2000
# Episodes nobody has confirmed for this long expire from Redis (the sweep then closes the row).
EPISODE_TTL_SECONDS = 300
# One detection-latency sample per this many evaluated updates (the metric lives in Redis).
LATENCY_SAMPLE_EVERY = 20


# --------------------------------------------------------------------------- pair configs


@dataclass(frozen=True, slots=True)
class PairConfig:
    """What detection needs of a `Pair`, detached from the ORM (safe to share across threads)."""

    id: str
    leg1: Instrument
    leg2: Instrument
    qty: Decimal
    threshold: Decimal  # percent
    direction: Direction
    auto_execute: bool = False

    @classmethod
    def from_pair(cls, pair: Any) -> PairConfig:
        return cls(
            id=pair.id,
            leg1=pair.leg1,
            leg2=pair.leg2,
            qty=Decimal(pair.qty),
            threshold=Decimal(pair.threshold),
            direction=Direction(pair.direction),
            auto_execute=bool(pair.auto_execute),
        )

    @property
    def legs(self) -> tuple[Instrument, Instrument]:
        return self.leg1, self.leg2


def load_pair_configs() -> list[PairConfig]:
    """Every enabled pair (one query)."""
    from trading.models import Pair

    return [PairConfig.from_pair(p) for p in Pair.objects.filter(enabled=True)]


# --------------------------------------------------------------------------- decide (pure)


@dataclass(frozen=True, slots=True)
class Inputs:
    """The books and fees a decision was made on (kept to build its full `Evaluation` on demand)."""

    book1: OrderBook
    book2: OrderBook
    fee1: Decimal
    fee2: Decimal


@dataclass(frozen=True)
class Decision:
    """One evaluation of one pair. `passing` is the whole verdict; `reason` says why not.

    `net_edge`/`net_edge_percent` are the executable (VWAP, after both taker fees) figures
    for `direction`; the full `Evaluation` (fills, fees, break-even size) is built only
    when something needs it (an announcement, a record), from the same books and fees.
    """

    pair_id: str
    passing: bool
    reason: str
    qty: Decimal
    threshold: Decimal
    ts: int  # ms: when it was decided
    direction: Direction | None = None
    net_edge: Decimal | None = None
    net_edge_percent: Decimal | None = None
    venue: str = "live"
    # False when the inputs could not be judged (a book missing, stale or crossed, a fee
    # unknown): the market-data process then leaves the pair to the sweep's REST fallback.
    conclusive: bool = True
    inputs: Inputs | None = field(default=None, repr=False, compare=False)
    known_evaluation: Evaluation | None = field(default=None, repr=False, compare=False)

    @cached_property
    def evaluation(self) -> Evaluation | None:
        if self.known_evaluation is not None:
            return self.known_evaluation
        if self.inputs is None or self.direction is None:
            return None
        i = self.inputs
        return evaluate(i.book1, i.book2, self.qty, self.direction, i.fee1, i.fee2)

    @cached_property
    def top(self) -> TopSpread | None:
        if self.inputs is None or self.direction is None:
            return None
        return top_of_book_spread(self.inputs.book1, self.inputs.book2, self.direction)


def _not_passing(pair: PairConfig, reason: str, at: int, venue: str = "live", *, conclusive: bool = True,
                 **extra: Any) -> Decision:
    return Decision(pair.id, False, reason, pair.qty, pair.threshold, at, venue=venue, conclusive=conclusive,
                    **extra)


def top_bound_percent(book1: OrderBook, book2: OrderBook, direction: Direction, fee1: Decimal,
                      fee2: Decimal) -> Decimal | None:
    """Upper bound of the net edge percent in `direction`, from the best prices alone.

    VWAPs are never better than the best prices, so net% = (S/B·(1−f_sell) − 1 − f_buy)·100
    is at most this with S/B = best bid / best ask. None when a side is empty.
    """
    if direction is Direction.LEG1_BUY_LEG2_SELL:
        return _bound(book1.best_ask, book2.best_bid, fee1, fee2)
    return _bound(book2.best_ask, book1.best_bid, fee2, fee1)


def _bound(ask: Decimal | None, bid: Decimal | None, fee_buy: Decimal, fee_sell: Decimal) -> Decimal | None:
    if ask is None or bid is None or ask <= 0:
        return None
    return (bid / ask * (ONE - fee_sell) - ONE - fee_buy) * HUNDRED


FillCache = dict[tuple[int, Decimal], Fill]


def _fill(levels: list[tuple[Decimal, Decimal]], qty: Decimal, cache: FillCache | None) -> Fill:
    """`spreads.vwap`, remembered for one update: pairs sharing a leg and a size walk it once."""
    if cache is None:
        return vwap(levels, qty)
    name = (id(levels), qty)
    fill = cache.get(name)
    if fill is None:
        fill = cache[name] = vwap(levels, qty)
    return fill


def _net_edge(book1: OrderBook, book2: OrderBook, qty: Decimal, direction: Direction, fee1: Decimal,
              fee2: Decimal, cache: FillCache | None = None) -> tuple[Decimal, Decimal] | None:
    """(net edge, net edge %) for `qty`, computed exactly as `spreads.evaluate` does; None beyond depth."""
    if direction is Direction.LEG1_BUY_LEG2_SELL:
        asks, bids, fee_buy, fee_sell = book1.asks, book2.bids, fee1, fee2
    else:
        asks, bids, fee_buy, fee_sell = book2.asks, book1.bids, fee2, fee1
    buy, sell = _fill(asks, qty, cache), _fill(bids, qty, cache)
    if not (buy.complete and sell.complete):
        return None
    net = (sell.notional - buy.notional) - (fee_buy * buy.notional + fee_sell * sell.notional)
    return net, net / buy.notional * HUNDRED


def decide(
    pair: PairConfig,
    book1: OrderBook | None,
    book2: OrderBook | None,
    fee1: Decimal | None,
    fee2: Decimal | None,
    *,
    at_ms: int | None = None,
    max_age_ms: float | None = None,
) -> Decision:
    """Does `pair` pass its threshold on these books, net of both taker fees?

    Cheapest test first: the inputs, then the best-price bound per direction, then the
    VWAP walk only for the directions the bound lets through.
    """
    at = at_ms if at_ms is not None else now_ms()
    max_age = max_age_ms if max_age_ms is not None else max_book_age_ms()
    for leg, book, fee in ((1, book1, fee1), (2, book2, fee2)):
        if book is None:
            return _not_passing(pair, f"no order book for leg {leg}", at, conclusive=False)
        age = at - book.received_ts
        if age > max_age:
            return _not_passing(pair, f"stale order book on leg {leg} ({age} ms old)", at, conclusive=False)
        if book.is_crossed:
            return _not_passing(pair, f"crossed order book on leg {leg}", at, conclusive=False)
        if fee is None:
            return _not_passing(pair, f"no taker fee known for leg {leg}", at, conclusive=False)
    assert book1 is not None and book2 is not None and fee1 is not None and fee2 is not None
    return decide_checked(pair, book1, book2, fee1, fee2, at)


def decide_checked(pair: PairConfig, book1: OrderBook, book2: OrderBook, fee1: Decimal, fee2: Decimal,
                   at: int, fills: FillCache | None = None) -> Decision:
    """`decide` once the inputs are known good (present, fresh, uncrossed, with fees).

    `fills` may remember VWAP walks across the pairs of one update (the books must not
    change while it is in use)."""
    venue = book1.venue if book1.venue == book2.venue else "emulator"
    bid1, ask1, bid2, ask2 = book1.best_bid, book1.best_ask, book2.best_bid, book2.best_ask
    directions = CONCRETE_DIRECTIONS if pair.direction is Direction.AUTO else (pair.direction,)
    floor = pair.threshold - BOUND_SLACK
    best_bound: Decimal | None = None
    candidates: list[Direction] = []
    for direction in directions:
        if direction is Direction.LEG1_BUY_LEG2_SELL:
            bound = _bound(ask1, bid2, fee1, fee2)
        else:
            bound = _bound(ask2, bid1, fee2, fee1)
        if bound is None:
            continue
        if best_bound is None or bound > best_bound:
            best_bound = bound
        if bound >= floor:
            candidates.append(direction)
    if best_bound is None:
        return _not_passing(pair, "empty order book side", at, venue)
    if not candidates:
        return _not_passing(pair, f"best-price net edge {best_bound:.4f}% below the threshold {pair.threshold}%",
                            at, venue)

    inputs = Inputs(book1, book2, fee1, fee2)
    best: tuple[Direction, Decimal, Decimal] | None = None
    for direction in candidates:
        edge = _net_edge(book1, book2, pair.qty, direction, fee1, fee2, fills)
        if edge is not None and (best is None or edge[0] > best[1]):
            best = (direction, edge[0], edge[1])
    if best is None:
        # Too thin for qty: the full evaluation says on which leg and how much there is.
        evaluation = evaluate(book1, book2, pair.qty, candidates[0], fee1, fee2)
        return _not_passing(pair, evaluation.reason, at, venue, direction=candidates[0], inputs=inputs,
                            known_evaluation=evaluation)
    direction, net, percent = best
    if percent < pair.threshold:
        return _not_passing(pair, f"net edge {percent:.4f}% below the threshold {pair.threshold}%", at, venue,
                            direction=direction, net_edge=net, net_edge_percent=percent, inputs=inputs)
    return Decision(pair.id, True, "", pair.qty, pair.threshold, at, direction=direction, net_edge=net,
                    net_edge_percent=percent, venue=venue, inputs=inputs)


# --------------------------------------------------------------------------- episodes (pure)


class EmitReason(StrEnum):
    APPEARED = "appeared"
    FLIPPED = "flipped"
    CHANGED = "changed"  # net edge moved materially
    REFRESH = "refresh"  # still there: the periodic re-announcement


@dataclass(frozen=True, slots=True)
class DedupPolicy:
    """When a persisting opportunity is news again.

    Material change: the net edge percent moved by at least `material_pp` percentage points
    AND by at least `material_ratio` of the last announced edge (0.30 % -> 0.36 % is not
    news at ratio 0.25; 0.30 % -> 0.40 % is). `reemit_ms` caps the silence while it persists.
    """

    reemit_ms: int = 30_000
    material_pp: Decimal = Decimal("0.02")
    material_ratio: Decimal = Decimal("0.25")

    @classmethod
    def from_settings(cls) -> DedupPolicy:
        return cls(
            reemit_ms=int(float(getattr(settings, "DETECTION_REEMIT_SECONDS", 30)) * 1000),
            material_pp=Decimal(str(getattr(settings, "DETECTION_MATERIAL_CHANGE_PP", "0.02"))),
            material_ratio=Decimal(str(getattr(settings, "DETECTION_MATERIAL_CHANGE_RATIO", "0.25"))),
        )

    def material(self, announced: Decimal, now: Decimal) -> bool:
        return abs(now - announced) >= max(self.material_pp, self.material_ratio * abs(announced))


@dataclass(slots=True)
class Episode:
    """An opportunity that is passing now: what was announced, and what has been seen since."""

    id: str
    pair_id: str
    direction: Direction
    opened_ms: int
    emitted_ms: int
    emitted_edge: Decimal  # net edge percent at the last announcement
    max_edge: Decimal
    last_edge: Decimal
    updates: int = 1

    def to_json(self) -> str:
        return json.dumps({
            "id": self.id, "pairId": self.pair_id, "direction": self.direction.value,
            "openedMs": self.opened_ms, "emittedMs": self.emitted_ms, "emittedEdge": str(self.emitted_edge),
            "maxEdge": str(self.max_edge), "lastEdge": str(self.last_edge), "updates": self.updates,
        })

    @classmethod
    def from_json(cls, raw: str | bytes) -> Episode:
        data = json.loads(raw)
        return cls(
            id=data["id"], pair_id=data["pairId"], direction=Direction(data["direction"]),
            opened_ms=int(data["openedMs"]), emitted_ms=int(data["emittedMs"]),
            emitted_edge=Decimal(data["emittedEdge"]), max_edge=Decimal(data["maxEdge"]),
            last_edge=Decimal(data["lastEdge"]), updates=int(data["updates"]),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """What one decision did to a pair's episode."""

    state: Episode | None
    emit: EmitReason | None = None
    opened: Episode | None = None
    ended: Episode | None = None
    end_reason: str = ""

    @property
    def quiet(self) -> bool:
        return self.emit is None and self.opened is None and self.ended is None


def new_episode_id() -> str:
    return uuid.uuid4().hex


def step(
    state: Episode | None,
    decision: Decision,
    policy: DedupPolicy,
    *,
    unreported: int = 0,
    new_id: Callable[[], str] = new_episode_id,
) -> Transition:
    """The next episode state for `decision`; pure apart from `new_id`.

    `unreported` counts passing updates seen before this decision but not yet added to
    the state (the market-data process batches the quiet ones).
    """
    at = decision.ts
    if not decision.passing:
        if state is None:
            return Transition(None)
        ended = replace(state, updates=state.updates + unreported)
        return Transition(None, ended=ended, end_reason=decision.reason or "no longer passing")
    edge = decision.net_edge_percent
    assert edge is not None and decision.direction is not None

    def opened() -> Episode:
        return Episode(new_id(), decision.pair_id, decision.direction, at, at, edge, edge, edge)  # type: ignore[arg-type]

    if state is None:
        fresh = opened()
        return Transition(fresh, EmitReason.APPEARED, opened=fresh)
    if state.direction is not decision.direction:
        fresh = opened()
        ended = replace(state, updates=state.updates + unreported)
        return Transition(fresh, EmitReason.FLIPPED, opened=fresh, ended=ended, end_reason="direction flipped")
    reason: EmitReason | None = None
    if policy.material(state.emitted_edge, edge):
        reason = EmitReason.CHANGED
    elif at - state.emitted_ms >= policy.reemit_ms:
        reason = EmitReason.REFRESH
    current = Episode(
        state.id, state.pair_id, state.direction, state.opened_ms,
        at if reason is not None else state.emitted_ms,
        edge if reason is not None else state.emitted_edge,
        edge if edge > state.max_edge else state.max_edge,
        edge,
        state.updates + unreported + 1,
    )
    return Transition(current, reason)


class Detector:
    """Per-pair episodes in memory: the dedup rules for one process (tests, bench, the local mirror)."""

    def __init__(self, policy: DedupPolicy | None = None) -> None:
        self.policy = policy or DedupPolicy()
        self.states: dict[str, Episode] = {}

    def observe(self, decision: Decision, *, unreported: int = 0) -> Transition:
        transition = step(self.states.get(decision.pair_id), decision, self.policy, unreported=unreported)
        self.set(decision.pair_id, transition.state)
        return transition

    def set(self, pair_id: str, state: Episode | None) -> None:
        if state is None:
            self.states.pop(pair_id, None)
        else:
            self.states[pair_id] = state


# --------------------------------------------------------------------------- shared episodes (Redis)


def episode_key(pair_id: str) -> str:
    from arbsite.redis_client import key

    return key("detection", "episode", pair_id)


class EpisodeStore:
    """The episode of every pair in Redis, changed with WATCH/MULTI so two processes never
    both announce one episode. Sync (`apply`, the sweep) and async (`aapply`, market data)."""

    def __init__(self, redis: Any, policy: DedupPolicy | None = None) -> None:
        self.redis = redis
        self.policy = policy or DedupPolicy.from_settings()

    def _write(self, pipe: Any, name: str, transition: Transition) -> None:
        pipe.multi()
        if transition.state is None:
            pipe.delete(name)
        else:
            pipe.set(name, transition.state.to_json(), ex=EPISODE_TTL_SECONDS)

    def apply(self, decision: Decision, *, unreported: int = 0) -> Transition:
        import redis

        name = episode_key(decision.pair_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    raw = pipe.get(name)
                    state = Episode.from_json(raw) if raw else None
                    transition = step(state, decision, self.policy, unreported=unreported)
                    if state is None and transition.state is None:
                        pipe.unwatch()
                        return transition
                    self._write(pipe, name, transition)
                    pipe.execute()
                    return transition
                except redis.WatchError:
                    continue

    async def aapply(self, decision: Decision, *, unreported: int = 0) -> Transition:
        import redis

        name = episode_key(decision.pair_id)
        async with self.redis.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    state = Episode.from_json(raw) if raw else None
                    transition = step(state, decision, self.policy, unreported=unreported)
                    if state is None and transition.state is None:
                        await pipe.unwatch()
                        return transition
                    self._write(pipe, name, transition)
                    await pipe.execute()
                    return transition
                except redis.WatchError:
                    continue

    def open_episodes(self) -> dict[str, Episode]:
        """pair id -> its open episode (the sweep's orphan check)."""
        prefix = episode_key("")
        out: dict[str, Episode] = {}
        for name in self.redis.scan_iter(match=f"{prefix}*", count=500):
            raw = self.redis.get(name)
            if raw:
                episode = Episode.from_json(raw)
                out[episode.pair_id] = episode
        return out

    def end(self, pair_id: str) -> None:
        self.redis.delete(episode_key(pair_id))


# --------------------------------------------------------------------------- effects


def _num(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def opportunity_payload(decision: Decision, transition: Transition) -> dict[str, Any]:
    """The `opportunity` event: SPEC fields (`spread` is sell VWAP − buy VWAP for qty, per
    unit; `spreadPercent` its percent of the buy price) plus the net edge the decision used."""
    evaluation = decision.evaluation
    assert evaluation is not None and transition.state is not None
    top = decision.top
    return {
        "pairId": decision.pair_id,
        "spread": _num(evaluation.gross_spread),
        "spreadPercent": _num(evaluation.gross_spread_percent),
        "netEdge": _num(evaluation.net_edge),
        "netEdgePercent": _num(evaluation.net_edge_percent),
        "threshold": _num(decision.threshold),
        "direction": evaluation.direction.value,
        "buyPrice": _num(evaluation.buy_price),
        "sellPrice": _num(evaluation.sell_price),
        "topSpread": _num(top.spread) if top else None,
        "topSpreadPercent": _num(top.spread_percent) if top else None,
        "qty": _num(decision.qty),
        "venue": decision.venue,
        "reason": transition.emit.value if transition.emit else None,
        "episode": transition.state.id,
        "openedTs": transition.state.opened_ms,
        "ts": decision.ts,
    }


def _dt(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def record_transition(decision: Decision, transition: Transition, source: str) -> None:
    """The `Opportunity` row: created when an episode opens, updated when it ends.

    Keyed by the episode id, so a repeated write changes nothing. An end that lands before
    its open (two processes racing) finds no row; the row the open then writes is closed by
    the sweep as "no longer observed", since its episode is gone from Redis.
    """
    from trading.opportunity_models import Opportunity

    if transition.ended is not None:
        ended = transition.ended
        updated = Opportunity.objects.filter(episode=ended.id).update(
            ended_at=_dt(decision.ts),
            updates=ended.updates,
            max_net_edge_percent=ended.max_edge,
            last_net_edge_percent=ended.last_edge,
            end_reason=transition.end_reason[:200],
        )
        if not updated:
            logger.info("opportunity ended before its record was written", extra={
                "event": "opportunity_record_missing", "pairId": ended.pair_id})
    if transition.opened is not None:
        evaluation = decision.evaluation
        assert evaluation is not None and evaluation.net_edge is not None
        assert evaluation.buy_price is not None and evaluation.sell_price is not None
        opened = transition.opened
        top = decision.top
        from trading.models import Pair

        Opportunity.objects.get_or_create(
            episode=opened.id,
            defaults={
                "pair": Pair.objects.filter(id=decision.pair_id).first(),
                "pair_key": decision.pair_id,
                "direction": opened.direction.value,
                "detected_at": _dt(opened.opened_ms),
                "qty": decision.qty,
                "top_spread": top.spread if top else None,
                "top_spread_percent": top.spread_percent if top else None,
                "buy_price": evaluation.buy_price,
                "sell_price": evaluation.sell_price,
                "net_edge": evaluation.net_edge,
                "net_edge_percent": opened.emitted_edge,
                "max_net_edge_percent": opened.max_edge,
                "last_net_edge_percent": opened.last_edge,
                "threshold": decision.threshold,
                "updates": opened.updates,
                "venue": decision.venue,
                "source": source,
            },
        )


def request_auto_execution(pair: PairConfig, decision: Decision) -> bool:
    """Ask execution to run `pair` (it re-validates on fresh books and refuses a second one
    in flight); True when an execution was queued."""
    from trading.execution import request_auto_execution as queue_execution

    execution = queue_execution(pair.id)
    if execution is not None:
        logger.info("auto-execution queued", extra={
            "event": "auto_execution_queued", "pairId": pair.id,
            "detail": {"executionId": execution.id, "netEdgePercent": str(decision.net_edge_percent)}})
    return execution is not None


@dataclass
class Effects:
    """What follows a transition; injectable so tests can record instead of publish."""

    publish: Callable[[str, dict[str, Any]], Any] | None = None
    record: Callable[[Decision, Transition, str], None] = record_transition
    auto_execute: Callable[[PairConfig, Decision], bool] = request_auto_execution

    def send(self, event: str, data: dict[str, Any]) -> None:
        if self.publish is not None:
            self.publish(event, data)
            return
        from arbsite import events

        events.publish(event, data)  # type: ignore[arg-type]

    def apply(self, pair: PairConfig, decision: Decision, transition: Transition, source: str) -> None:
        """Sync: record, announce, auto-execute. Each step is isolated: one failing never
        hides the others (a failed record must not swallow the event)."""
        if transition.opened is not None or transition.ended is not None:
            _log_transition(decision, transition, source)
            try:
                self.record(decision, transition, source)
            except Exception:
                logger.exception("opportunity record failed", extra={
                    "event": "opportunity_record_failed", "pairId": pair.id})
        if transition.emit is None:
            return
        self.send("opportunity", opportunity_payload(decision, transition))
        if pair.auto_execute:
            try:
                self.auto_execute(pair, decision)
            except Exception as exc:
                logger.exception("auto-execution request failed", extra={
                    "event": "auto_execution_failed", "pairId": pair.id})
                self.send("engine_alert", {
                    "severity": "error", "code": "AUTO_EXECUTION_FAILED", "pairId": pair.id,
                    "message": f"{pair.id}: auto-execution could not be queued: {type(exc).__name__}",
                })


def _log_transition(decision: Decision, transition: Transition, source: str) -> None:
    if transition.ended is not None:
        logger.info("opportunity ended", extra={
            "event": "opportunity_ended", "pairId": decision.pair_id,
            "detail": {"episode": transition.ended.id, "updates": transition.ended.updates,
                       "maxNetEdgePercent": str(transition.ended.max_edge), "why": transition.end_reason,
                       "source": source}})
    if transition.opened is not None:
        logger.info("opportunity detected", extra={
            "event": "opportunity_opened", "pairId": decision.pair_id,
            "detail": {"episode": transition.opened.id, "direction": transition.opened.direction.value,
                       "netEdgePercent": str(transition.opened.emitted_edge), "source": source}})


def max_book_age_ms() -> float:
    """Books older than this never decide anything (the sweep refetches them over REST)."""
    default = float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0)) * 1000
    return float(getattr(settings, "DETECTION_MAX_BOOK_AGE_MS", default))


# --------------------------------------------------------------------------- fees


async def taker_fees(instruments: Iterable[Instrument]) -> dict[Instrument, Decimal]:
    """Taker fee per instrument from the process's cached markets (loaded once per exchange).

    An instrument whose market or fee cannot be had is left out: detection then says so
    instead of guessing a fee.
    """
    from exchanges import connectivity
    from trading.spreads import taker_fee_rate

    wanted = list(dict.fromkeys(instruments))
    out: dict[Instrument, Decimal] = {}
    for exchange in dict.fromkeys(i.exchange for i in wanted):
        client = connectivity.async_client(exchange)
        try:
            markets = await connectivity.load_markets(client, exchange)
        except Exception as exc:  # noqa: BLE001 - an exchange we cannot reach has no fees yet
            logger.warning("markets unavailable for fees", extra={
                "event": "detection_fees_unavailable", "exchange": exchange.value,
                "error_code": getattr(exc, "error_code", type(exc).__name__)})
            continue
        finally:
            await client.close()
        for instrument in (i for i in wanted if i.exchange is exchange):
            try:
                out[instrument] = taker_fee_rate(connectivity.market_for(markets, instrument))
            except Exception:  # noqa: BLE001 - not listed / no fee: reported by decide()
                continue
    return out


# --------------------------------------------------------------------------- the book listener


Entry = tuple[PairConfig, int, int, Decimal | None, Decimal | None]  # pair, leg slots, leg fees


@dataclass
class PairIndex:
    """instrument -> the enabled pairs using it, with the legs' taker fees.

    Each instrument also gets a small integer slot, so the per-update loop reads the legs'
    books from a list instead of hashing instruments once per pair.
    """

    by_instrument: dict[Instrument, tuple[PairConfig, ...]] = field(default_factory=dict)
    fees: dict[Instrument, Decimal] = field(default_factory=dict)
    loaded_mono: float | None = None
    slots: dict[Instrument, int] = field(default_factory=dict)
    entries: dict[Instrument, tuple[Entry, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, pairs: Iterable[PairConfig], fees: Mapping[Instrument, Decimal]) -> PairIndex:
        by: dict[Instrument, list[PairConfig]] = {}
        for pair in pairs:
            for leg in dict.fromkeys(pair.legs):
                by.setdefault(leg, []).append(pair)
        slots = {instrument: n for n, instrument in enumerate(by)}
        entries = {
            instrument: tuple(
                (p, slots[p.leg1], slots[p.leg2], fees.get(p.leg1), fees.get(p.leg2)) for p in using
            )
            for instrument, using in by.items()
        }
        return cls({k: tuple(v) for k, v in by.items()}, dict(fees), time.monotonic(), slots, entries)

    @property
    def pairs(self) -> list[PairConfig]:
        return list({p.id: p for ps in self.by_instrument.values() for p in ps}.values())


@dataclass(frozen=True, slots=True)
class LegView:
    """One leg's latest book with what every pair on it reads first, computed once per update."""

    book: OrderBook
    bid: Decimal | None
    ask: Decimal | None
    crossed: bool
    received_ts: int

    @classmethod
    def of(cls, book: OrderBook) -> LegView:
        bid, ask = book.best_bid, book.best_ask
        return cls(book, bid, ask, bid is not None and ask is not None and bid >= ask, book.received_ts)


def cannot_pass(pair: PairConfig, leg1: LegView | None, leg2: LegView | None, fee1: Decimal | None,
                fee2: Decimal | None, at: int, max_age: float) -> bool:
    """The hot path's screen: True when this update can neither make `pair` pass nor be judged
    (a leg missing, stale, crossed or without a fee; or the best-price bound below threshold).
    Exact: `decide` would say "not passing" (or "not conclusive") for every such case."""
    if leg1 is None or leg2 is None or fee1 is None or fee2 is None or leg1.crossed or leg2.crossed:
        return True
    if at - leg1.received_ts > max_age or at - leg2.received_ts > max_age:
        return True
    floor = pair.threshold - BOUND_SLACK
    direction = pair.direction
    if direction is not Direction.LEG1_SELL_LEG2_BUY:
        bound = _bound(leg1.ask, leg2.bid, fee1, fee2)
        if bound is not None and bound >= floor:
            return False
    if direction is not Direction.LEG1_BUY_LEG2_SELL:
        bound = _bound(leg2.ask, leg1.bid, fee2, fee1)
        if bound is not None and bound >= floor:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Pending:
    """A decision the listener must reconcile with the shared episode (a transition, or a sync)."""

    pair: PairConfig
    decision: Decision
    unreported: int  # passing updates seen since the last reconciliation, besides this one


class BookListener:
    """Event-driven detection in the market-data process (`register_book_listener(listener)`).

    `detect(book)` is the in-process part (index lookup, decide, local dedup), timed by the
    benchmark; `__call__` adds the shared episode, the events, the records and auto-execution.
    """

    def __init__(
        self,
        *,
        loader: Callable[[], list[PairConfig]] = load_pair_configs,
        fee_loader: Callable[[Iterable[Instrument]], Any] = taker_fees,
        store: EpisodeStore | None = None,
        effects: Effects | None = None,
        policy: DedupPolicy | None = None,
        refresh_seconds: float = INDEX_REFRESH_SECONDS,
        sync_ms: int = SYNC_MS,
        max_age_ms: float | None = None,
    ) -> None:
        self.loader = loader
        self.fee_loader = fee_loader
        self.policy = policy or DedupPolicy.from_settings()
        self.store = store
        self.effects = effects or Effects()
        self.refresh_seconds = refresh_seconds
        self.sync_ms = sync_ms
        self.max_age_ms = max_age_ms if max_age_ms is not None else max_book_age_ms()
        self.index = PairIndex()
        self.books: dict[Instrument, OrderBook] = {}
        self.legs: list[LegView | None] = []  # by the index's slot
        self.local = Detector(self.policy)
        self.synced_ms: dict[str, int] = {}
        self.unreported: dict[str, int] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._effects_lock = asyncio.Lock()
        self._evaluated = 0

    # --- the index ------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the enabled pairs (in a thread: the ORM refuses the event loop) and fees."""
        pairs = await asyncio.to_thread(_in_thread, self.loader)
        legs = {leg for p in pairs for leg in p.legs}
        fees = {i: f for i, f in self.index.fees.items() if i in legs}
        missing = [i for i in legs if i not in fees]
        if missing:
            fees.update(await self.fee_loader(missing))
        self.use_index(PairIndex.build(pairs, fees))

    def use_index(self, index: PairIndex) -> None:
        """Switch to `index`, keeping the latest book of every leg it still uses."""
        views: list[LegView | None] = [None] * len(index.slots)
        for instrument, slot in index.slots.items():
            book = self.books.get(instrument)
            views[slot] = LegView.of(book) if book is not None else None
        self.index, self.legs = index, views
        live = {p.id for p in index.pairs}
        for gone in [pid for pid in self.local.states if pid not in live]:
            self.local.set(gone, None)  # the sweep closes its shared episode

    def _refresh_due(self) -> bool:
        loaded = self.index.loaded_mono
        return loaded is None or time.monotonic() - loaded >= self.refresh_seconds

    async def _ensure_index(self) -> None:
        if self.index.loaded_mono is None:
            await self._refresh_quietly()  # the first book waits for the index, once
        elif self._refresh_due() and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:
            logger.exception("pair index refresh failed", extra={"event": "detection_index_failed"})
            self.index.loaded_mono = time.monotonic()  # keep the old index; retry after the interval

    # --- detection ------------------------------------------------------------------

    def detect(self, book: OrderBook, at_ms: int | None = None) -> list[Pending]:
        """Decide every pair using `book`'s instrument; return those needing the shared store."""
        instrument = book.instrument
        self.books[instrument] = book
        index = self.index
        slot = index.slots.get(instrument)
        if slot is None:
            return []
        legs = self.legs
        legs[slot] = LegView.of(book)
        at = at_ms if at_ms is not None else now_ms()
        max_age = self.max_age_ms
        states = self.local.states
        fills: FillCache = {}  # this update's VWAP walks, shared by the pairs on the same legs
        out: list[Pending] = []
        for pair, slot1, slot2, fee1, fee2 in index.entries[instrument]:
            leg1, leg2 = legs[slot1], legs[slot2]
            if pair.id not in states and cannot_pass(pair, leg1, leg2, fee1, fee2, at, max_age):
                continue  # nothing open here and nothing to open: the common case, kept cheap
            if leg1 is None or leg2 is None or fee1 is None or fee2 is None:
                continue  # cannot judge here (a leg not seen yet, or no fee): the sweep will
            if leg1.crossed or leg2.crossed or at - leg1.received_ts > max_age or at - leg2.received_ts > max_age:
                continue  # nor here (a leg stale or broken): the sweep's REST fallback will
            decision = decide_checked(pair, leg1.book, leg2.book, fee1, fee2, at, fills)
            transition = self.local.observe(decision)
            if transition.quiet:
                if not decision.passing:
                    continue  # nothing open here (the sweep ends shared episodes these books deny)
                if at - self.synced_ms.get(pair.id, 0) < self.sync_ms:
                    self.unreported[pair.id] = self.unreported.get(pair.id, 0) + 1
                    continue
            self.synced_ms[pair.id] = at
            out.append(Pending(pair, decision, self.unreported.pop(pair.id, 0)))
        return out

    async def __call__(self, book: OrderBook) -> None:
        started = time.perf_counter()
        await self._ensure_index()
        pending = self.detect(book)
        self._evaluated += 1
        if self._evaluated % LATENCY_SAMPLE_EVERY == 0:
            elapsed_ms = (time.perf_counter() - started) * 1000
            asyncio.get_running_loop().run_in_executor(None, _observe_latency, elapsed_ms)
        for item in pending:
            await self._reconcile(item)

    async def _reconcile(self, item: Pending) -> None:
        pair, decision = item.pair, item.decision
        if self.store is None:
            from arbsite.redis_client import get_async_redis

            self.store = EpisodeStore(get_async_redis(), self.policy)  # lives on this listener's loop
        async with self._effects_lock:
            try:
                transition = await self.store.aapply(decision, unreported=item.unreported)
            except Exception:
                logger.exception("shared episode unavailable", extra={
                    "event": "detection_store_failed", "pairId": pair.id})
                return
            self.local.set(pair.id, transition.state)
            if transition.quiet:
                return
            await asyncio.to_thread(_in_thread, lambda: self.effects.apply(pair, decision, transition, "stream"))


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ORM work in a worker thread and release that thread's connection if it went bad."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        return fn()
    finally:
        close_old_connections()


def _observe_latency(ms: float) -> None:
    from arbsite import metrics

    metrics.observe("detection_latency_ms", ms)


_LISTENER: BookListener | None = None


def listener() -> BookListener:
    """The process's book listener (created on first use)."""
    global _LISTENER
    if _LISTENER is None:
        _LISTENER = BookListener()
    return _LISTENER


async def on_book(book: OrderBook) -> None:
    """What the market-data process calls on every book update."""
    await listener()(book)


def install() -> None:
    """Called from `TradingConfig.ready()`: the record model, the sweep task, the book listener."""
    import importlib

    importlib.import_module("trading.opportunity_models")  # the model (until models.py imports it)
    importlib.import_module("trading.detection_tasks")  # the `trading.poll_pairs` task

    try:
        from exchanges.market_data import register_book_listener
    except ImportError:
        return
    register_book_listener(on_book)


__all__ = [
    "BookListener",
    "Decision",
    "DedupPolicy",
    "Detector",
    "Effects",
    "EmitReason",
    "Episode",
    "EpisodeStore",
    "PairConfig",
    "Transition",
    "decide",
    "install",
    "step",
]

"""Opportunity detection: is a pair's executable net edge over its threshold, and is that news?

Three layers, from pure to wired:

1. `decide(pair, book1, book2, fee1, fee2)` -> `Decision`: the money question, pure. Books
   that are missing, stale or crossed never pass. A top-of-book bound rejects most updates
   before any VWAP walk (the executable edge can only be worse than the best prices); what
   is left is computed once per route and size and shared by the pairs on the same legs
   (`LegView`, `Route`, `judge`), with the Decimal operations of `spreads.evaluate`.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

from django.conf import settings

from exchanges.order_books import OrderBook, now_ms
from exchanges.symbols import Instrument
from trading.spreads import (
    HUNDRED,
    Direction,
    Evaluation,
    Level,
    TopSpread,
    evaluate,
    top_of_book_spread,
    unfilled_reason,
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

    @cached_property
    def evaluation(self) -> Evaluation | None:
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


def _notional(levels: Sequence[Level], qty: Decimal) -> Decimal | None:
    """`spreads.vwap(levels, qty).notional` when `qty` fills completely, else None.

    The same Decimal operations in the same order as `vwap` (so the same digits), minus the
    average price (a division) the net edge never reads.
    """
    if qty <= 0:
        raise ValueError(f"qty must be positive, got {qty}")
    remaining = qty
    notional = ZERO
    for price, size in levels:
        if size > 0:
            if size < remaining:
                notional += price * size
                remaining -= size
            else:
                return notional + price * remaining
    return None


@dataclass(frozen=True, slots=True)
class LegView:
    """One leg's book with what every pair on it reads: the best prices, and the quote
    notional of each size taken from each side.

    Notionals are remembered for as long as this is the leg's latest book, so the pairs that
    share the leg and a size walk it once, on this update and on the other legs' updates
    until this leg's next book. Books are never changed once handed over (market data
    builds a new one per update), which is what makes that exact.
    """

    book: OrderBook
    bid: Decimal | None
    ask: Decimal | None
    crossed: bool
    received_ts: int
    ask_notionals: dict[Decimal, Decimal | None]
    bid_notionals: dict[Decimal, Decimal | None]

    @classmethod
    def of(cls, book: OrderBook) -> LegView:
        bid, ask = book.best_bid, book.best_ask
        return cls(book, bid, ask, bid is not None and ask is not None and bid >= ask, book.received_ts, {}, {})

    def buy_cost(self, qty: Decimal) -> Decimal | None:
        """Quote paid to buy `qty` from the asks (None: too thin)."""
        try:
            return self.ask_notionals[qty]
        except KeyError:
            cost = self.ask_notionals[qty] = _notional(self.book.asks, qty)
            return cost

    def sell_proceeds(self, qty: Decimal) -> Decimal | None:
        """Quote received for selling `qty` into the bids (None: too thin)."""
        try:
            return self.bid_notionals[qty]
        except KeyError:
            proceeds = self.bid_notionals[qty] = _notional(self.book.bids, qty)
            return proceeds


Edge = tuple[Decimal, Decimal]  # (net edge, net edge percent)


class Route:
    """Buying on one leg's asks and selling into another's bids, as of one update.

    Holds what every pair trading that way shares: the best-price bound of the net edge
    percent, and the executable net edge per size (computed once per size per update).
    """

    __slots__ = ("_edges", "bound", "buy", "fee_buy", "fee_sell", "sell")

    def __init__(self, buy: LegView, sell: LegView, fee_buy: Decimal, fee_sell: Decimal) -> None:
        self.buy, self.sell, self.fee_buy, self.fee_sell = buy, sell, fee_buy, fee_sell
        self.bound = _bound(buy.ask, sell.bid, fee_buy, fee_sell)
        self._edges: dict[Decimal, Edge | None] = {}

    def edge(self, qty: Decimal) -> Edge | None:
        """(net edge, net edge %) for `qty`, with the operations of `spreads.evaluate`; None beyond depth."""
        try:
            return self._edges[qty]
        except KeyError:
            pass
        cost, proceeds = self.buy.buy_cost(qty), self.sell.sell_proceeds(qty)
        edge: Edge | None = None
        if cost is not None and proceeds is not None:
            net = (proceeds - cost) - (self.fee_buy * cost + self.fee_sell * proceeds)
            edge = (net, net / cost * HUNDRED)
        self._edges[qty] = edge
        return edge


class LegPair:
    """Two legs (in a pair's order) with their fees, as of one update: both routes between them."""

    __slots__ = ("back", "inputs", "there", "venue")

    def __init__(self, there: Route, back: Route) -> None:
        self.there = there  # LEG1_BUY_LEG2_SELL
        self.back = back  # LEG1_SELL_LEG2_BUY
        book1, book2 = there.buy.book, there.sell.book
        self.venue = book1.venue if book1.venue == book2.venue else "emulator"
        self.inputs = Inputs(book1, book2, there.fee_buy, there.fee_sell)

    @classmethod
    def of(cls, leg1: LegView, leg2: LegView, fee1: Decimal, fee2: Decimal) -> LegPair:
        return cls(Route(leg1, leg2, fee1, fee2), Route(leg2, leg1, fee2, fee1))

    def shortfall(self, direction: Direction, qty: Decimal) -> str:
        """Why `qty` cannot be filled in `direction`: the full evaluation's `reason`."""
        route = self.there if direction is Direction.LEG1_BUY_LEG2_SELL else self.back
        return unfilled_reason(qty, direction, vwap(route.buy.book.asks, qty), vwap(route.sell.book.bids, qty))


def decide_checked(pair: PairConfig, book1: OrderBook, book2: OrderBook, fee1: Decimal, fee2: Decimal,
                   at: int) -> Decision:
    """`decide` once the inputs are known good (present, fresh, uncrossed, with fees)."""
    decision = judge(pair, LegPair.of(LegView.of(book1), LegView.of(book2), fee1, fee2), at)
    assert decision is not None
    return decision


def judge(pair: PairConfig, legs: LegPair, at: int, *, explain: bool = True) -> Decision | None:
    """The verdict of `decide_checked` on shared legs; with `explain=False`, None instead of
    any decision that does not pass (the listener's case for a pair with nothing open).

    Cheapest test first: the best-price bound per direction, then the executable net edge
    (shared per route and size) only for the directions the bound lets through.
    """
    direction = pair.direction
    floor = pair.threshold - BOUND_SLACK
    bound1 = legs.there.bound if direction is not Direction.LEG1_SELL_LEG2_BUY else None
    bound2 = legs.back.bound if direction is not Direction.LEG1_BUY_LEG2_SELL else None
    there = bound1 is not None and bound1 >= floor
    back = bound2 is not None and bound2 >= floor
    if not (there or back):
        if not explain:
            return None
        if bound1 is None and bound2 is None:
            return _not_passing(pair, "empty order book side", at, legs.venue)
        best_bound = bound1 if bound2 is None or (bound1 is not None and bound1 >= bound2) else bound2
        return _not_passing(pair, f"best-price net edge {best_bound:.4f}% below the threshold {pair.threshold}%",
                            at, legs.venue)

    qty = pair.qty
    best: tuple[Direction, Edge] | None = None
    if there:
        edge = legs.there.edge(qty)
        if edge is not None:
            best = (Direction.LEG1_BUY_LEG2_SELL, edge)
    if back:
        edge = legs.back.edge(qty)
        if edge is not None and (best is None or edge[0] > best[1][0]):
            best = (Direction.LEG1_SELL_LEG2_BUY, edge)
    if best is None:
        if not explain:
            return None
        # Too thin for qty: say on which leg and how much there is (the full evaluation's reason).
        first = Direction.LEG1_BUY_LEG2_SELL if there else Direction.LEG1_SELL_LEG2_BUY
        return _not_passing(pair, legs.shortfall(first, qty), at, legs.venue, direction=first, inputs=legs.inputs)
    chosen, (net, percent) = best
    if percent < pair.threshold:
        if not explain:
            return None
        return _not_passing(pair, f"net edge {percent:.4f}% below the threshold {pair.threshold}%", at,
                            legs.venue, direction=chosen, net_edge=net, net_edge_percent=percent,
                            inputs=legs.inputs)
    return Decision(pair.id, True, "", qty, pair.threshold, at, direction=chosen, net_edge=net,
                    net_edge_percent=percent, venue=legs.venue, inputs=legs.inputs)


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


Entry = tuple[PairConfig, int]  # a pair, and which of its instrument's leg pairs it trades on
LegSlots = tuple[int, int, Decimal | None, Decimal | None]  # the legs' slots and taker fees


@dataclass
class PairIndex:
    """instrument -> the enabled pairs using it, with the legs' taker fees.

    Each instrument also gets a small integer slot, so the per-update loop reads the legs'
    books from a list instead of hashing instruments once per pair; and the distinct leg
    pairs (in a pair's leg order) of each instrument's pairs, so what pairs on the same legs
    share is worked out once per update.
    """

    by_instrument: dict[Instrument, tuple[PairConfig, ...]] = field(default_factory=dict)
    fees: dict[Instrument, Decimal] = field(default_factory=dict)
    loaded_mono: float | None = None
    slots: dict[Instrument, int] = field(default_factory=dict)
    entries: dict[Instrument, tuple[Entry, ...]] = field(default_factory=dict)
    leg_pairs: dict[Instrument, tuple[LegSlots, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, pairs: Iterable[PairConfig], fees: Mapping[Instrument, Decimal]) -> PairIndex:
        by: dict[Instrument, list[PairConfig]] = {}
        for pair in pairs:
            for leg in dict.fromkeys(pair.legs):
                by.setdefault(leg, []).append(pair)
        instruments = list(by)  # by slot
        slots = {instrument: n for n, instrument in enumerate(instruments)}
        entries: dict[Instrument, tuple[Entry, ...]] = {}
        leg_pairs: dict[Instrument, tuple[LegSlots, ...]] = {}
        for instrument, using in by.items():
            numbered: dict[tuple[int, int], int] = {}
            for p in using:
                numbered.setdefault((slots[p.leg1], slots[p.leg2]), len(numbered))
            entries[instrument] = tuple((p, numbered[slots[p.leg1], slots[p.leg2]]) for p in using)
            leg_pairs[instrument] = tuple(
                (s1, s2, fees.get(instruments[s1]), fees.get(instruments[s2])) for s1, s2 in numbered
            )
        return cls({k: tuple(v) for k, v in by.items()}, dict(fees), time.monotonic(), slots, entries, leg_pairs)

    @property
    def pairs(self) -> list[PairConfig]:
        return list({p.id: p for ps in self.by_instrument.values() for p in ps}.values())


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
        states = self.local.states
        shared = self._leg_pairs(index.leg_pairs[instrument], at)
        out: list[Pending] = []
        for pair, which in index.entries[instrument]:
            on = shared[which]
            if on is None:
                continue  # cannot judge here (a leg unseen, stale or crossed, or no fee): the sweep will
            # A pair with nothing open only matters if it passes: skip explaining why it does not.
            decision = judge(pair, on, at, explain=pair.id in states)
            if decision is None:
                continue  # nothing open here and nothing to open: the common case, kept cheap
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

    def _leg_pairs(self, wanted: tuple[LegSlots, ...], at: int) -> list[LegPair | None]:
        """This update's view of each leg pair (None where it cannot be judged here), with the
        routes shared between leg pairs that are the same legs in the other order."""
        legs, max_age = self.legs, self.max_age_ms
        routes: dict[tuple[int, int], Route] = {}
        out: list[LegPair | None] = []
        for slot1, slot2, fee1, fee2 in wanted:
            leg1, leg2 = legs[slot1], legs[slot2]
            if (leg1 is None or leg2 is None or fee1 is None or fee2 is None or leg1.crossed or leg2.crossed
                    or at - leg1.received_ts > max_age or at - leg2.received_ts > max_age):
                out.append(None)
                continue
            there = routes.get((slot1, slot2))
            if there is None:
                there = routes[slot1, slot2] = Route(leg1, leg2, fee1, fee2)
            back = routes.get((slot2, slot1))
            if back is None:
                back = routes[slot2, slot1] = Route(leg2, leg1, fee2, fee1)
            out.append(LegPair(there, back))
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

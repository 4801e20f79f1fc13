"""The optimised hot path decides exactly what a full evaluation of every pair decides.

`BookListener.detect` skips pairs by the best-price bound, shares VWAP notionals and net
edges across pairs and updates, and does not explain a miss for a pair with nothing open.
Here a reference listener does none of that: for every pair on the updated leg it runs
`spreads.evaluate` in full (the old-style evaluation), turns that into a decision and
applies the same local dedup and sync rules. Both replay the recorded Binance BTCUSDT
spot + USD-M updates of the benchmark (`tests.bench.detection`, 50 pairs) and must hand
the same pairs to Redis, with the same verdicts, directions and net edges to the digit,
and leave the same episodes after every update. Each pair's pure `decide` is checked
against the full evaluation on every update as well (passing or not, executable or not,
direction, net edge, why not).

Cases: Binance taker fees (the bound rejects nearly everything), zero fees with tiny
thresholds (every pair evaluated in full, depth running out for the larger sizes), and
taker fees over a derived perp book (prices × 1.0022, so edges cross the lower thresholds
back and forth).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges.order_books import OrderBook
from exchanges.symbols import Instrument
from tests.bench.detection import build_pairs, recorded_updates
from tests.detection.helpers import PERP, PERP_FEE, SPOT, SPOT_FEE, shifted
from trading.detection import (
    BookListener,
    Decision,
    DedupPolicy,
    Detector,
    PairConfig,
    PairIndex,
    Pending,
    decide,
)
from trading.spreads import Direction, Evaluation, evaluate

pytestmark = pytest.mark.recorded

UPDATES = 1200  # ~40 s of both streams: thin books for the 2 BTC pairs and episodes ending
MAX_AGE_MS = 10_000
SYNC_MS = 2000
POLICY = DedupPolicy()
RICH_PERP = "1.0022"  # derived: perp prices × this, so the spot→perp edge sits around the thresholds


def exact(value: Decimal | None) -> Any:
    """A Decimal's digits and exponent, so 1.0 and 1.00 differ (identical means identical)."""
    return None if value is None else value.as_tuple()


class ReferenceListener:
    """Every pair on the updated leg evaluated in full with `spreads.evaluate`, then the
    dedup and sync rules of `BookListener.detect`. Also checks each pair's `decide`."""

    def __init__(self, pairs: list[PairConfig], fees: dict[Instrument, Decimal]) -> None:
        self.pairs = pairs
        self.fees = fees
        self.books: dict[Instrument, OrderBook] = {}
        self.local = Detector(POLICY)
        self.synced_ms: dict[str, int] = {}
        self.unreported: dict[str, int] = {}
        self.seen: Counter[str] = Counter()

    def detect(self, book: OrderBook, at: int) -> list[Pending]:
        self.books[book.instrument] = book
        out: list[Pending] = []
        for pair in self.pairs:
            if book.instrument not in pair.legs:
                continue
            book1, book2 = self.books.get(pair.leg1), self.books.get(pair.leg2)
            fee1, fee2 = self.fees.get(pair.leg1), self.fees.get(pair.leg2)
            if book1 is None or book2 is None or fee1 is None or fee2 is None:
                continue
            if book1.is_crossed or book2.is_crossed or at - book1.received_ts > MAX_AGE_MS \
                    or at - book2.received_ts > MAX_AGE_MS:
                continue
            full = evaluate(book1, book2, pair.qty, pair.direction, fee1, fee2)
            self.check_decide(pair, book1, book2, fee1, fee2, at, full)
            passing = full.passes(pair.threshold)
            decision = Decision(
                pair.id, passing, "" if passing else (full.reason or "net edge below the threshold"), pair.qty,
                pair.threshold, at, direction=full.direction if passing else None,
                net_edge=full.net_edge if passing else None,
                net_edge_percent=full.net_edge_percent if passing else None,
            )
            transition = self.local.observe(decision)
            if transition.quiet:
                if not passing:
                    continue
                if at - self.synced_ms.get(pair.id, 0) < SYNC_MS:
                    self.unreported[pair.id] = self.unreported.get(pair.id, 0) + 1
                    continue
            self.synced_ms[pair.id] = at
            out.append(Pending(pair, decision, self.unreported.pop(pair.id, 0)))
        return out

    def check_decide(self, pair: PairConfig, book1: OrderBook, book2: OrderBook, fee1: Decimal, fee2: Decimal,
                     at: int, full: Evaluation) -> None:
        """`decide` (bound, shared walks) against the full evaluation of the same books."""
        mine = decide(pair, book1, book2, fee1, fee2, at_ms=at, max_age_ms=MAX_AGE_MS)
        assert mine.passing == full.passes(pair.threshold), (pair, mine)

        def in_direction(direction: Direction) -> Evaluation:
            if full.direction is direction:
                return full
            return evaluate(book1, book2, pair.qty, direction, fee1, fee2)

        if mine.passing:
            self.seen["passing"] += 1
            assert full.executable and mine.direction is full.direction
            assert (exact(mine.net_edge), exact(mine.net_edge_percent)) == \
                (exact(full.net_edge), exact(full.net_edge_percent))
        elif mine.net_edge is not None:
            self.seen["executable, below threshold"] += 1
            assert mine.direction is not None
            same = in_direction(mine.direction)
            assert same.executable and not same.passes(pair.threshold)
            assert (exact(mine.net_edge), exact(mine.net_edge_percent)) == \
                (exact(same.net_edge), exact(same.net_edge_percent))
        elif mine.direction is not None:
            self.seen["too thin"] += 1
            same = in_direction(mine.direction)
            assert not same.executable and mine.reason == same.reason
            assert mine.evaluation == same
        else:
            self.seen["best-price bound"] += 1
            assert mine.reason.startswith("best-price net edge")


def pending(item: Pending) -> tuple[Any, ...]:
    d = item.decision
    edge = (d.direction, exact(d.net_edge), exact(d.net_edge_percent)) if d.passing else None
    return item.pair.id, d.passing, edge, item.unreported


def episodes(detector: Detector) -> dict[str, tuple[Any, ...]]:
    return {pid: (e.direction, e.opened_ms, e.emitted_ms, exact(e.emitted_edge), exact(e.max_edge),
                  exact(e.last_edge), e.updates) for pid, e in detector.states.items()}


@pytest.fixture(scope="module")
def updates(data_dir: Path) -> list[OrderBook]:
    if not (data_dir / "binance" / "bench").is_dir():
        pytest.skip("benchmark captures not in the recorded data")
    return recorded_updates(data_dir, UPDATES)


@pytest.mark.parametrize("case", ["taker_fees", "zero_fees", "taker_fees_rich_perp"])
def test_detect_decides_as_the_full_evaluation_of_every_pair(updates: list[OrderBook], case: str) -> None:
    zero = case == "zero_fees"
    fees = {SPOT: Decimal(0), PERP: Decimal(0)} if zero else {SPOT: SPOT_FEE, PERP: PERP_FEE}
    books = updates
    if case == "taker_fees_rich_perp":
        books = [shifted(b, RICH_PERP) if b.instrument == PERP else b for b in updates]
    pairs = build_pairs(50, zero_fee=zero)
    listener = BookListener(loader=list, policy=POLICY, max_age_ms=MAX_AGE_MS, sync_ms=SYNC_MS)
    listener.use_index(PairIndex.build(pairs, fees))
    reference = ReferenceListener(pairs, fees)

    handed = Counter[str]()
    for book in books:
        got = listener.detect(book, at_ms=book.received_ts)
        want = reference.detect(book, book.received_ts)
        assert [pending(p) for p in got] == [pending(p) for p in want]
        assert episodes(listener.local) == episodes(reference.local)
        handed.update("passing" if p.decision.passing else "ended" for p in got)

    # Not vacuous: each case went through the paths it is here for.
    seen = reference.seen
    if case == "taker_fees":
        assert seen["best-price bound"] > 0
    elif case == "zero_fees":
        assert seen["passing"] > 0 and seen["too thin"] > 0 and handed["ended"] > 0
    else:
        assert seen["passing"] > 0 and seen["executable, below threshold"] > 0 and seen["best-price bound"] > 0
        assert handed["passing"] > 0 and handed["ended"] > 0

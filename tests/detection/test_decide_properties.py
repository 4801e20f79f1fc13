"""Property tests (hypothesis): the shortcuts of `decide` never change its verdict.

`decide` prunes by the best-price bound, walks a side once per size (`_notional`, shared
through `LegView`/`Route`), and the listener's screen (`judge(..., explain=False)`) drops
misses unexplained. On arbitrary uncrossed books, sizes, fees and positive thresholds the
verdict, direction and net edge must be those of `spreads.evaluate`, digit for digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from exchanges.order_books import OrderBook
from exchanges.symbols import Exchange, MarketType
from tests.detection.helpers import pair_config
from tests.trading.test_spreads_properties import books, fees, quantities, sides
from trading.detection import LegPair, LegView, _notional, decide_checked, judge
from trading.spreads import Book, Direction, evaluate, vwap

D = Decimal
AT = 1_723_100_000_000
thresholds = st.sampled_from([D("0.0001"), D("0.001"), D("0.01"), D("0.05"), D("0.2"), D("1")])
directions = st.sampled_from([d.value for d in Direction])


def exact(value: Decimal | None) -> Any:
    return None if value is None else value.as_tuple()


def order_book(book: Book, kind: MarketType = MarketType.SPOT) -> OrderBook:
    return OrderBook(Exchange.BINANCE, "BTCUSDT", kind, list(book.bids), list(book.asks), ts=AT, received_ts=AT)


@st.composite
def with_empty_levels(draw: st.DrawFn, ascending: bool) -> list[tuple[Decimal, Decimal]]:
    """A side with some zero-size levels mixed in (ignored by every walk)."""
    levels = list(draw(sides(ascending)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(levels)))
        levels.insert(at, (levels[min(at, len(levels) - 1)][0], D(0)))
    return levels


@given(levels=with_empty_levels(ascending=True), qty=quantities)
def test_the_notional_walk_is_the_vwap_notional_to_the_digit(levels, qty) -> None:
    fill = vwap(levels, qty)
    notional = _notional(levels, qty)
    if fill.complete:
        assert exact(notional) == exact(fill.notional)
    else:
        assert notional is None


def test_the_notional_walk_rejects_a_non_positive_qty() -> None:
    with pytest.raises(ValueError, match="qty must be positive"):
        _notional([(D(1), D(1))], D(0))


@settings(max_examples=300)
@given(a=books(), b=books(), qty=quantities, f1=fees, f2=fees, threshold=thresholds, direction=directions,
       near=st.sampled_from([None, D(0), D("1e-12")]))
def test_decide_matches_the_full_evaluation(a, b, qty, f1, f2, threshold, direction, near) -> None:
    book1, book2 = order_book(a), order_book(b, MarketType.LINEAR)
    full = evaluate(book1, book2, qty, direction, f1, f2)
    if near is not None and full.net_edge_percent is not None and full.net_edge_percent > 0:
        threshold = full.net_edge_percent + near  # exactly at the edge (passes), or just above it (misses)
    pair = pair_config(threshold=str(threshold), qty=str(qty), direction=direction)
    decision = decide_checked(pair, book1, book2, f1, f2, AT)
    event("passing" if decision.passing else "below threshold" if decision.net_edge is not None
          else "too thin" if decision.direction is not None else "best-price bound")

    assert decision.passing == full.passes(pair.threshold)
    if decision.passing:
        assert decision.direction is full.direction
        assert (exact(decision.net_edge), exact(decision.net_edge_percent)) == \
            (exact(full.net_edge), exact(full.net_edge_percent))
    elif decision.direction is not None:  # evaluated in a direction: its figures or why it cannot fill
        same = evaluate(book1, book2, qty, decision.direction, f1, f2)
        assert decision.evaluation == same
        assert exact(decision.net_edge) == exact(same.net_edge)
        if not same.executable:
            assert decision.reason == same.reason

    screened = judge(pair, LegPair.of(LegView.of(book1), LegView.of(book2), f1, f2), AT, explain=False)
    assert (screened is None) == (not decision.passing)
    if screened is not None:
        assert screened == decision


@settings(max_examples=150)
@given(a=books(), b=books(), sizes=st.lists(quantities, min_size=1, max_size=6), f1=fees, f2=fees,
       threshold=thresholds, direction=directions)
def test_shared_walks_give_what_fresh_ones_give(a, b, sizes, f1, f2, threshold, direction) -> None:
    """Pairs on the same legs share one LegPair (and its reverse shares the routes): what each
    pair gets is what it would get alone."""
    book1, book2 = order_book(a), order_book(b, MarketType.LINEAR)
    view1, view2 = LegView.of(book1), LegView.of(book2)
    forward = LegPair.of(view1, view2, f1, f2)
    reverse = LegPair(forward.back, forward.there)
    for qty in sizes + sizes:
        pair = pair_config(threshold=str(threshold), qty=str(qty), direction=direction)
        assert judge(pair, forward, AT) == decide_checked(pair, book1, book2, f1, f2, AT)
        swapped = pair_config(threshold=str(threshold), qty=str(qty), direction=Direction(direction).flipped.value,
                              leg1=pair.leg2, leg2=pair.leg1)
        assert judge(swapped, reverse, AT) == decide_checked(swapped, book2, book1, f2, f1, AT)

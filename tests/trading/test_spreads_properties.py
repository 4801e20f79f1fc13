"""Property tests for the pure spread math (hypothesis), plus a few tables."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.spreads import (
    Book,
    Direction,
    breakeven_qty,
    depth,
    evaluate,
    net_edge_at,
    top_of_book_spread,
    vwap,
)

D = Decimal
STEP = D("0.0001")  # sizes below are quoted to 4 dp

sizes = st.integers(min_value=1, max_value=50_000).map(lambda n: D(n) * STEP)
fees = st.sampled_from([D(0), D("0.0002"), D("0.0005"), D("0.001"), D("0.002")])


def _side(draw: st.DrawFn, start: int, ascending: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=500), min_size=0, max_size=12))
    prices = [start]
    for gap in gaps:
        prices.append(prices[-1] + gap if ascending else prices[-1] - gap)
    return tuple((D(p) / 100, draw(sizes)) for p in prices)


@st.composite
def sides(draw: st.DrawFn, ascending: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    return _side(draw, draw(st.integers(min_value=90_000, max_value=110_000)), ascending)  # cents


@st.composite
def books(draw: st.DrawFn) -> Book:
    """Each book uncrossed; the two books may cross each other (that is the opportunity)."""
    mid = draw(st.integers(min_value=90_000, max_value=110_000))
    half_spread = draw(st.integers(min_value=1, max_value=2_000))
    bids = _side(draw, mid - half_spread, ascending=False)
    asks = _side(draw, mid + half_spread, ascending=True)
    return Book(bids=bids, asks=asks)


quantities = st.integers(min_value=1, max_value=200_000).map(lambda n: D(n) * STEP)


@given(levels=sides(ascending=True), qty=quantities)
def test_it_keeps_vwap_between_best_and_worst_price(levels, qty) -> None:
    fill = vwap(levels, qty)
    assert fill.qty_filled > 0
    assert fill.avg_price is not None and fill.worst_price is not None
    assert levels[0][0] <= fill.avg_price <= fill.worst_price
    assert fill.complete == (qty <= depth(levels))
    assert fill.qty_filled == min(qty, depth(levels))


@given(levels=sides(ascending=False))
def test_it_prices_the_full_depth_at_total_notional_over_total_size(levels) -> None:
    total = depth(levels)
    fill = vwap(levels, total)
    notional = sum(p * s for p, s in levels)
    assert fill.complete
    assert fill.notional == notional
    assert fill.avg_price == notional / total
    assert fill.worst_price == levels[-1][0]


@given(levels=sides(ascending=True), extra=quantities)
def test_it_reports_a_partial_fill_beyond_depth(levels, extra) -> None:
    fill = vwap(levels, depth(levels) + extra)
    assert not fill.complete
    assert fill.qty_filled == depth(levels)


@given(a=books(), b=books(), qty=quantities, f1=fees, f2=fees, direction=st.sampled_from(list(Direction)))
def test_it_never_nets_more_than_the_gross_spread(a, b, qty, f1, f2, direction) -> None:
    ev = evaluate(a, b, qty, direction, f1, f2)
    if not ev.executable:
        assert ev.reason and ev.net_edge is None
        return
    assert ev.net_edge is not None and ev.gross_edge is not None and ev.fees is not None
    assert ev.net_edge <= ev.gross_edge
    assert ev.net_edge == ev.gross_edge - ev.fees
    assert ev.net_edge_percent is not None and ev.gross_spread_percent is not None
    assert ev.net_edge_percent <= ev.gross_spread_percent
    assert ev.fees == f1 * ev.leg1.fill.notional + f2 * ev.leg2.fill.notional


@given(a=books(), b=books(), qty=quantities, f1=fees, f2=fees)
def test_it_picks_the_better_side_in_auto(a, b, qty, f1, f2) -> None:
    one = evaluate(a, b, qty, Direction.LEG1_BUY_LEG2_SELL, f1, f2)
    two = evaluate(a, b, qty, Direction.LEG1_SELL_LEG2_BUY, f1, f2)
    auto = evaluate(a, b, qty, Direction.AUTO, f1, f2)
    executable = [e for e in (one, two) if e.executable]
    assert auto.executable == bool(executable)
    if executable:
        assert auto.net_edge == max(e.net_edge for e in executable)  # type: ignore[type-var]
        assert auto.direction in (e.direction for e in executable if e.net_edge == auto.net_edge)


@given(a=books(), b=books(), qty=quantities, f1=fees, f2=fees)
def test_it_flips_the_direction_when_the_legs_are_swapped(a, b, qty, f1, f2) -> None:
    forward = evaluate(a, b, qty, Direction.AUTO, f1, f2)
    backward = evaluate(b, a, qty, Direction.AUTO, f2, f1)
    assert forward.executable == backward.executable
    if not forward.executable:
        return
    assert forward.net_edge == backward.net_edge
    other = evaluate(a, b, qty, forward.direction.flipped, f1, f2)
    if other.net_edge != forward.net_edge:  # a tie has no preferred side
        assert backward.direction is forward.direction.flipped
        assert forward.buy.leg == 3 - backward.buy.leg


@given(a=books(), b=books())
def test_it_flips_the_top_of_book_direction_when_the_legs_are_swapped(a, b) -> None:
    forward = top_of_book_spread(a, b, Direction.AUTO)
    backward = top_of_book_spread(b, a, Direction.AUTO)
    assert forward is not None and backward is not None
    assert forward.spread == backward.spread
    assert backward.direction is forward.direction.flipped or forward.spread_percent == backward.spread_percent
    # Ranked by percent, the unit the threshold is in.
    each = [top_of_book_spread(a, b, d) for d in (Direction.LEG1_BUY_LEG2_SELL, Direction.LEG1_SELL_LEG2_BUY)]
    assert forward.spread_percent == max(q.spread_percent for q in each if q is not None)


@settings(max_examples=300)
@given(asks=sides(ascending=True), bids=sides(ascending=False), fb=fees, fs=fees)
def test_it_finds_the_size_where_the_net_edge_reaches_zero(asks, bids, fb, fs) -> None:
    limit = min(depth(asks), depth(bids))
    qty = breakeven_qty(asks, bids, fb, fs, qty_step=STEP)
    if qty is None:
        loss = net_edge_at(asks, bids, STEP, fb, fs)
        assert loss is not None and loss < 0
        return
    assert STEP <= qty <= limit
    assert qty % STEP == 0
    edge = net_edge_at(asks, bids, qty, fb, fs)
    assert edge is not None and edge >= 0
    if qty + STEP <= limit:
        more = net_edge_at(asks, bids, qty + STEP, fb, fs)
        assert more is not None and more < 0


# --------------------------------------------------------------------------- tables

ASKS = ((D("100"), D("1")), (D("101"), D("1")), (D("103"), D("2")))
BIDS = ((D("102"), D("1")), (D("101.5"), D("1")), (D("99"), D("5")))


def test_it_walks_levels_for_vwap() -> None:
    fill = vwap(ASKS, D("2.5"))
    assert fill.notional == D("100") + D("101") + D("51.5")
    assert fill.avg_price == D("252.5") / D("2.5")
    assert fill.worst_price == D("103")
    assert fill.complete


def test_it_rejects_a_non_positive_qty() -> None:
    with pytest.raises(ValueError):
        vwap(ASKS, D(0))
    with pytest.raises(ValueError):
        evaluate(Book(BIDS, ASKS), Book(BIDS, ASKS), D("-1"), Direction.AUTO, D(0), D(0))


def test_it_reports_an_empty_book_as_a_reason() -> None:
    ev = evaluate(Book((), ()), Book(BIDS, ASKS), D("1"), Direction.LEG1_BUY_LEG2_SELL, D(0), D(0))
    assert not ev.executable
    assert ev.reason == "empty book on leg 1 (asks)"
    assert top_of_book_spread(Book((), ()), Book(BIDS, ASKS), Direction.AUTO) is None


def test_it_solves_the_breakeven_inside_a_level() -> None:
    # Buy on ASKS, sell on BIDS, no fees: marginal +2, +0.5, then 101.5-101=+0.5 ... then 99-103=-4.
    # q in [0,1]: +2 -> N(1)=2; [1,2]: 101.5-101=+0.5 -> N(2)=2.5; [2,4]: 99-103=-4 -> root at 2+2.5/4=2.625
    assert breakeven_qty(ASKS, BIDS, D(0), D(0), qty_step=D("0.001")) == D("2.625")
    assert breakeven_qty(ASKS, BIDS, D(0), D(0), qty_step=D("0.1")) == D("2.6")
    # The first unit loses when buying at 100 and selling at 99.
    assert breakeven_qty(ASKS, ((D("99"), D("5")),), D(0), D(0)) is None
    # Never negative: capped at depth.
    assert breakeven_qty(((D("1"), D("3")),), ((D("2"), D("2")),), D(0), D(0)) == D("2")


def test_it_computes_the_net_edge_and_percent() -> None:
    leg1 = Book(bids=((D("99"), D("10")),), asks=((D("100"), D("10")),))
    leg2 = Book(bids=((D("101"), D("10")),), asks=((D("102"), D("10")),))
    ev = evaluate(leg1, leg2, D("2"), Direction.AUTO, D("0.001"), D("0.002"))
    assert ev.direction is Direction.LEG1_BUY_LEG2_SELL
    assert ev.gross_spread == D("1")
    assert ev.gross_edge == D("2")
    assert ev.fees == D("0.2") + D("0.404")
    assert ev.net_edge == D("1.396")
    assert ev.net_edge_percent == D("1.396") / D("200") * 100
    assert ev.leg1.side == "buy" and ev.leg2.side == "sell"
    assert ev.passes(D("0.698")) and not ev.passes(D("0.699"))
    top = top_of_book_spread(leg1, leg2, Direction.AUTO)
    assert top is not None and top.spread == D("1") and top.spread_percent == D("1")

"""`decide`: the money verdict on real Binance spot/USD-M BTCUSDT books (2024-08-08)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.order_books import OrderBook
from tests.detection.helpers import PERP, PERP_FEE, SPOT, SPOT_FEE, aged, pair_config, recorded_book, shifted
from trading.detection import BOUND_SLACK, decide, top_bound_percent
from trading.spreads import Direction, evaluate, top_of_book_spread

pytestmark = pytest.mark.recorded

NOW = 1_723_100_000_000


@pytest.fixture(scope="module")
def spot(data_dir: Path) -> OrderBook:
    return recorded_book(data_dir, SPOT, received_ts=NOW)


@pytest.fixture(scope="module")
def perp(data_dir: Path) -> OrderBook:
    return recorded_book(data_dir, PERP, received_ts=NOW)


def test_it_finds_nothing_on_the_real_books_after_fees(spot: OrderBook, perp: OrderBook) -> None:
    decision = decide(pair_config(), spot, perp, SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert not decision.passing
    assert decision.reason.startswith("best-price net edge")
    assert "below the threshold 0.05%" in decision.reason


def test_it_passes_a_derived_gap_with_the_executable_edge(spot: OrderBook, perp: OrderBook) -> None:
    # Derived: the perp book's prices × 1.003 (0.3 % over spot).
    rich_perp = shifted(perp, "1.003")
    pair = pair_config(qty="0.5")
    decision = decide(pair, spot, rich_perp, SPOT_FEE, PERP_FEE, at_ms=NOW)
    expected = evaluate(spot, rich_perp, Decimal("0.5"), Direction.AUTO, SPOT_FEE, PERP_FEE)
    assert decision.passing, decision.reason
    assert decision.direction is Direction.LEG1_BUY_LEG2_SELL
    assert decision.evaluation == expected
    assert decision.net_edge_percent == expected.net_edge_percent
    assert decision.top == top_of_book_spread(spot, rich_perp, Direction.LEG1_BUY_LEG2_SELL)
    assert decision.reason == ""


def test_it_passes_exactly_at_the_threshold_and_not_just_below(spot: OrderBook, perp: OrderBook) -> None:
    rich_perp = shifted(perp, "1.003")
    edge = evaluate(spot, rich_perp, Decimal("0.01"), Direction.AUTO, SPOT_FEE, PERP_FEE).net_edge_percent
    assert edge is not None and edge > 0

    at = decide(pair_config(threshold=str(edge)), spot, rich_perp, SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert at.passing

    above = edge + Decimal("1e-12")
    below = decide(pair_config(threshold=str(above)), spot, rich_perp, SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert not below.passing
    assert below.reason.startswith("net edge") and "below the threshold" in below.reason
    assert below.evaluation is not None and below.evaluation.executable


def test_fees_turn_a_gross_gap_into_nothing(spot: OrderBook, perp: OrderBook) -> None:
    # Derived: perp × 1.0012: a gross spread over the 0.05 % threshold, under 0.1 % + 0.05 % of fees.
    rich_perp = shifted(perp, "1.0012")
    top = top_of_book_spread(spot, rich_perp, Direction.AUTO)
    assert top is not None and top.spread > 0

    without_fees = decide(pair_config(), spot, rich_perp, Decimal(0), Decimal(0), at_ms=NOW)
    assert without_fees.passing
    with_fees = decide(pair_config(), spot, rich_perp, SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert not with_fees.passing
    assert "below the threshold" in with_fees.reason


def test_insufficient_depth_is_no_opportunity_and_says_why(data_dir: Path) -> None:
    thin_spot = recorded_book(data_dir, SPOT, received_ts=NOW, depth=3)
    rich_perp = shifted(recorded_book(data_dir, PERP, received_ts=NOW), "1.01")
    decision = decide(pair_config(qty="50", direction="leg1_buy_leg2_sell"), thin_spot, rich_perp,
                      SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert not decision.passing
    assert "insufficient depth on leg 1 (asks)" in decision.reason
    assert decision.evaluation is not None and not decision.evaluation.executable


@pytest.mark.parametrize(
    ("which", "expected"),
    [("missing1", "no order book for leg 1"), ("stale2", "stale order book on leg 2"),
     ("crossed1", "crossed order book on leg 1"), ("nofee2", "no taker fee known for leg 2")],
)
def test_untrustworthy_inputs_never_pass(spot: OrderBook, perp: OrderBook, which: str, expected: str) -> None:
    rich_perp = shifted(perp, "1.01")  # would pass by far
    book1: OrderBook | None = spot
    book2: OrderBook | None = rich_perp
    fee2: Decimal | None = PERP_FEE
    if which == "missing1":
        book1 = None
    elif which == "stale2":
        book2 = aged(rich_perp, NOW - 10_001)
    elif which == "crossed1":
        book1 = OrderBook(spot.exchange, spot.symbol, spot.type, [(Decimal(2), Decimal(1))],
                          [(Decimal(1), Decimal(1))], NOW, NOW)
    else:
        fee2 = None
    decision = decide(pair_config(), book1, book2, SPOT_FEE, fee2, at_ms=NOW, max_age_ms=10_000)
    assert not decision.passing
    assert decision.reason.startswith(expected)


@pytest.mark.parametrize("factor", ["0.995", "0.998", "0.9985", "1.0", "1.0015", "1.002", "1.004", "1.01"])
@pytest.mark.parametrize("direction", ["auto", "leg1_buy_leg2_sell", "leg1_sell_leg2_buy"])
def test_the_best_price_shortcut_never_hides_a_passing_trade(
    spot: OrderBook, perp: OrderBook, factor: str, direction: str
) -> None:
    moved = shifted(perp, factor)
    pair = pair_config(threshold="0.01", qty="0.2", direction=direction)
    full = evaluate(spot, moved, pair.qty, direction, SPOT_FEE, PERP_FEE)
    decision = decide(pair, spot, moved, SPOT_FEE, PERP_FEE, at_ms=NOW)
    assert decision.passing == full.passes(pair.threshold)
    if full.executable:
        assert full.net_edge_percent is not None
        bound = top_bound_percent(spot, moved, full.direction, SPOT_FEE, PERP_FEE)
        assert bound is not None and bound >= full.net_edge_percent - BOUND_SLACK


@pytest.mark.parametrize("factor", ["0.995", "0.998", "0.9985", "1.0", "1.0015", "1.002", "1.004", "1.01"])
@pytest.mark.parametrize("threshold", ["0.01", "0.05", "0.2"])
@pytest.mark.parametrize("direction", ["auto", "leg1_buy_leg2_sell", "leg1_sell_leg2_buy"])
def test_the_listeners_screen_only_skips_what_cannot_pass(
    spot: OrderBook, perp: OrderBook, factor: str, threshold: str, direction: str
) -> None:
    from trading.detection import LegPair, LegView, judge

    moved = shifted(perp, factor)
    pair = pair_config(threshold=threshold, qty="0.2", direction=direction)
    screened = judge(pair, LegPair.of(LegView.of(spot), LegView.of(moved), SPOT_FEE, PERP_FEE), NOW, explain=False)
    decision = decide(pair, spot, moved, SPOT_FEE, PERP_FEE, at_ms=NOW)
    if screened is None:
        assert not decision.passing
    else:
        assert decision.passing and screened == decision

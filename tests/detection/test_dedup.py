"""The dedup rules: one announcement per episode, again only on news."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.order_books import OrderBook
from tests.detection.helpers import PERP, PERP_FEE, SPOT, SPOT_FEE, pair_config, recorded_book, shifted
from trading.detection import Decision, DedupPolicy, Detector, EmitReason, decide
from trading.spreads import Direction

T0 = 1_723_100_000_000
POLICY = DedupPolicy(reemit_ms=30_000, material_pp=Decimal("0.02"), material_ratio=Decimal("0.25"))


@pytest.fixture(scope="module")
def books(data_dir: Path) -> tuple[OrderBook, OrderBook]:
    return recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)


def at(books: tuple[OrderBook, OrderBook], perp_factor: str, ms: int) -> Decision:
    """Decide at `ms` with the perp book × factor (a derived variant); books fresh at `ms`."""
    spot, perp = books
    spot_now = shifted(spot, "1", received_ts=ms)
    perp_now = shifted(perp, perp_factor, received_ts=ms)
    return decide(pair_config(), spot_now, perp_now, SPOT_FEE, PERP_FEE, at_ms=ms)


def test_it_announces_once_while_it_persists_then_ends(books) -> None:
    detector = Detector(POLICY)
    first = detector.observe(at(books, "1.003", T0))
    assert first.emit is EmitReason.APPEARED and first.opened is not None and first.ended is None
    for i in range(1, 20):
        again = detector.observe(at(books, "1.003", T0 + i * 100))
        assert again.quiet
    assert detector.states["spot_perp_btc"].updates == 20

    gone = detector.observe(at(books, "1.0", T0 + 2500))
    assert gone.emit is None and gone.state is None
    assert gone.ended is not None and gone.ended.id == first.opened.id and gone.ended.updates == 20
    assert "below the threshold" in gone.end_reason

    assert detector.observe(at(books, "1.0", T0 + 2600)).quiet  # nothing open, nothing to say


def test_it_announces_again_when_it_reappears(books) -> None:
    detector = Detector(POLICY)
    first = detector.observe(at(books, "1.003", T0))
    detector.observe(at(books, "1.0", T0 + 100))
    back = detector.observe(at(books, "1.003", T0 + 200))
    assert back.emit is EmitReason.APPEARED
    assert back.opened is not None and first.opened is not None and back.opened.id != first.opened.id


def test_a_direction_flip_is_a_new_episode(books) -> None:
    detector = Detector(POLICY)
    first = detector.observe(at(books, "1.003", T0))
    assert first.state is not None and first.state.direction is Direction.LEG1_BUY_LEG2_SELL
    flip = detector.observe(at(books, "0.997", T0 + 100))
    assert flip.emit is EmitReason.FLIPPED
    assert flip.state is not None and flip.state.direction is Direction.LEG1_SELL_LEG2_BUY
    assert flip.ended is not None and flip.ended.id == first.state.id
    assert flip.end_reason == "direction flipped"


def test_a_material_edge_change_is_news_a_small_one_is_not(books) -> None:
    detector = Detector(POLICY)
    first = detector.observe(at(books, "1.003", T0))
    assert first.state is not None
    small = detector.observe(at(books, "1.00305", T0 + 100))
    assert small.quiet
    big = detector.observe(at(books, "1.0045", T0 + 200))
    assert big.emit is EmitReason.CHANGED
    assert big.opened is None and big.ended is None and big.state is not None
    assert big.state.id == first.state.id
    assert big.state.emitted_edge > first.state.emitted_edge
    assert big.state.max_edge == big.state.emitted_edge
    # Measured against the last announcement, not the first: back down is news again.
    down = detector.observe(at(books, "1.003", T0 + 300))
    assert down.emit is EmitReason.CHANGED


def test_it_reannounces_at_most_every_interval(books) -> None:
    detector = Detector(POLICY)
    detector.observe(at(books, "1.003", T0))
    assert detector.observe(at(books, "1.003", T0 + 29_999)).quiet
    refresh = detector.observe(at(books, "1.003", T0 + 30_000))
    assert refresh.emit is EmitReason.REFRESH
    assert detector.observe(at(books, "1.003", T0 + 31_000)).quiet
    assert detector.observe(at(books, "1.003", T0 + 60_000)).emit is EmitReason.REFRESH


@pytest.mark.parametrize(
    ("announced", "now", "material"),
    [
        ("0.30", "0.36", False),  # 0.06 pp < 25 % of 0.30
        ("0.30", "0.375", True),  # exactly 25 %
        ("0.30", "0.225", True),
        ("0.04", "0.059", False),  # below the 0.02 pp floor
        ("0.04", "0.06", True),
    ],
)
def test_material_change_boundaries(announced: str, now: str, material: bool) -> None:
    assert POLICY.material(Decimal(announced), Decimal(now)) is material

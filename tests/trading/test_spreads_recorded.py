"""Spread math on real Binance books recorded in the same minute (spot vs USD-M BTCUSDT, 2024-08-08).

Expected values come from an independent walk written here with `fractions.Fraction`
and cumulative sizes, not from `trading.spreads`.
"""

from __future__ import annotations

import bisect
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from trading.spreads import Book, Direction, evaluate, top_of_book_spread

pytestmark = pytest.mark.recorded

SPOT_FEE = Decimal("0.001")  # Binance spot default taker (ccxt markets' `taker`)
USDM_FEE = Decimal("0.0005")  # Binance USD-M default taker


def _load(data_dir: Path, name: str) -> dict:
    return json.loads((data_dir / "binance" / "orderbook" / name).read_text())


@pytest.fixture(scope="module")
def raw(data_dir: Path) -> tuple[dict, dict]:
    spot = _load(data_dir, "spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json")
    usdm = _load(data_dir, "usdm_BTCUSDT_2024-08-08_rest_depth_limit1000.json")
    return spot, usdm


@pytest.fixture(scope="module")
def books(raw: tuple[dict, dict]) -> tuple[Book, Book]:
    spot, usdm = raw
    return Book.parse(spot["bids"], spot["asks"]), Book.parse(usdm["bids"], usdm["asks"])


def _cost(levels: list[list[str]], qty: Fraction) -> Fraction | None:
    """Notional to take `qty` using cumulative sizes + bisect (a different walk from vwap())."""
    prices = [Fraction(p) for p, _ in levels]
    sizes = [Fraction(s) for _, s in levels]
    cumulative, running = [], Fraction(0)
    for s in sizes:
        running += s
        cumulative.append(running)
    if qty > cumulative[-1]:
        return None
    i = bisect.bisect_left(cumulative, qty)  # the level where qty is reached
    full = sum((prices[j] * sizes[j] for j in range(i)), Fraction(0))
    before = cumulative[i - 1] if i else Fraction(0)
    return full + prices[i] * (qty - before)


def _hand_net(buy_levels, sell_levels, qty: Fraction, fee_buy: Fraction, fee_sell: Fraction):
    buy, sell = _cost(buy_levels, qty), _cost(sell_levels, qty)
    assert buy is not None and sell is not None
    net = sell * (1 - fee_sell) - buy * (1 + fee_buy)
    return buy / qty, sell / qty, net, net / buy * 100


def _close(decimal_value: Decimal | None, exact: Fraction) -> bool:
    assert decimal_value is not None
    return abs(Fraction(decimal_value) - exact) <= Fraction(1, 10**18) * max(Fraction(1), abs(exact))


def test_it_reads_the_top_of_book_spread(books) -> None:
    spot, usdm = books
    top = top_of_book_spread(spot, usdm, Direction.AUTO)
    assert top is not None
    # Spot bid 61837.63 is above the USD-M ask 61800.30: sell spot, buy the perp.
    assert top.direction is Direction.LEG1_SELL_LEG2_BUY
    assert (top.sell_price, top.buy_price) == (Decimal("61837.63"), Decimal("61800.30"))
    assert top.spread == Decimal("37.33")
    assert _close(top.spread_percent, Fraction("37.33") / Fraction("61800.30") * 100)


@pytest.mark.parametrize("qty", ["0.001", "1", "50"])
@pytest.mark.parametrize("direction", [Direction.LEG1_BUY_LEG2_SELL, Direction.LEG1_SELL_LEG2_BUY])
def test_it_matches_a_hand_rolled_walk(raw, books, qty: str, direction: Direction) -> None:
    spot_raw, usdm_raw = raw
    spot, usdm = books
    ev = evaluate(spot, usdm, Decimal(qty), direction, SPOT_FEE, USDM_FEE)
    assert ev.executable, ev.reason
    if direction is Direction.LEG1_BUY_LEG2_SELL:
        expected = _hand_net(spot_raw["asks"], usdm_raw["bids"], Fraction(qty), Fraction("0.001"), Fraction("0.0005"))
    else:
        expected = _hand_net(usdm_raw["asks"], spot_raw["bids"], Fraction(qty), Fraction("0.0005"), Fraction("0.001"))
    buy_avg, sell_avg, net, net_pct = expected
    assert _close(ev.buy_price, buy_avg)
    assert _close(ev.sell_price, sell_avg)
    assert ev.net_edge is not None and Fraction(ev.net_edge) == net  # sums of exact products: no rounding at all
    assert _close(ev.net_edge_percent, net_pct)


@pytest.mark.parametrize("qty", ["0.001", "1", "50"])
def test_it_picks_the_better_direction_on_real_books(raw, books, qty: str) -> None:
    spot_raw, usdm_raw = raw
    spot, usdm = books
    q = Fraction(qty)
    nets = {
        Direction.LEG1_BUY_LEG2_SELL: _hand_net(
            spot_raw["asks"], usdm_raw["bids"], q, Fraction("0.001"), Fraction("0.0005")
        )[2],
        Direction.LEG1_SELL_LEG2_BUY: _hand_net(
            usdm_raw["asks"], spot_raw["bids"], q, Fraction("0.0005"), Fraction("0.001")
        )[2],
    }
    ev = evaluate(spot, usdm, Decimal(qty), Direction.AUTO, SPOT_FEE, USDM_FEE)
    assert ev.direction is max(nets, key=nets.__getitem__)
    assert ev.net_edge is not None and Fraction(ev.net_edge) == max(nets.values())


def test_it_finds_the_fee_free_breakeven_on_real_books(raw, books) -> None:
    spot_raw, usdm_raw = raw
    spot, usdm = books
    ev = evaluate(spot, usdm, Decimal("1"), Direction.LEG1_SELL_LEG2_BUY, Decimal(0), Decimal(0))
    size = ev.breakeven_qty
    assert size is not None and size > 1
    step = Fraction(1, 10**5)  # USD-M sizes have 3 dp, spot 5 dp
    _, _, at, _ = _hand_net(usdm_raw["asks"], spot_raw["bids"], Fraction(size), Fraction(0), Fraction(0))
    _, _, beyond, _ = _hand_net(usdm_raw["asks"], spot_raw["bids"], Fraction(size) + step, Fraction(0), Fraction(0))
    assert at >= 0 > beyond
    # With real taker fees (0.15 % round trip vs a 0.06 % top spread) even the first unit loses.
    assert evaluate(spot, usdm, Decimal("1"), Direction.AUTO, SPOT_FEE, USDM_FEE).breakeven_qty is None


def test_it_reports_depth_exhaustion_as_a_reason(books) -> None:
    spot, usdm = books
    ev = evaluate(spot, usdm, Decimal("200"), Direction.LEG1_SELL_LEG2_BUY, SPOT_FEE, USDM_FEE)
    assert not ev.executable
    assert ev.net_edge is None
    assert ev.reason == "insufficient depth on leg 1 (bids): 111.79271000 available of 200"
    huge = evaluate(spot, usdm, Decimal("10000"), Direction.AUTO, SPOT_FEE, USDM_FEE)
    assert not huge.executable and "insufficient depth on leg 1" in huge.reason and "leg 2" in huge.reason

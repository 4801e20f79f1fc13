"""The independent replayer agrees with the checks recorded in data/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.venue import replay

BINANCE = {
    ("spot", "BTCUSDT"): (
        "spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json",
        "spot_BTCUSDT_2024-08-08_ws_depth100ms_first300.jsonl.gz",
        298,
    ),
    ("spot", "ETHUSDT"): (
        "spot_ETHUSDT_2024-08-08_rest_depth_limit1000.json",
        "spot_ETHUSDT_2024-08-08_ws_depth100ms_first200.jsonl.gz",
        198,
    ),
    ("usdm", "BTCUSDT"): (
        "usdm_BTCUSDT_2024-08-08_rest_depth_limit1000.json",
        "usdm_BTCUSDT_2024-08-08_ws_depth0ms_first300.jsonl.gz",
        296,
    ),
    ("usdm", "ETHUSDT"): (
        "usdm_ETHUSDT_2024-08-08_rest_depth_limit1000.json",
        "usdm_ETHUSDT_2024-08-08_ws_depth0ms_first200.jsonl.gz",
        195,
    ),
}


def binance_set(data_dir: Path, market: str, symbol: str) -> tuple[dict, list[dict], int]:
    snapshot_name, stream_name, applied = BINANCE[(market, symbol)]
    folder = data_dir / "binance" / "orderbook"
    return json.loads((folder / snapshot_name).read_text()), replay.read_messages(folder / stream_name), applied


@pytest.mark.parametrize(("market", "symbol"), list(BINANCE))
def test_it_applies_as_many_binance_events_as_the_readme_says(data_dir: Path, market: str, symbol: str) -> None:
    snapshot, events, applied = binance_set(data_dir, market, symbol)
    books = list(replay.binance_books(snapshot, events, market))
    assert len(books) == applied
    bids, asks = books[-1].top(1)
    assert bids[0][0] < asks[0][0]  # never crossed


def test_it_returns_the_book_at_an_update_id(data_dir: Path) -> None:
    snapshot, events, _ = binance_set(data_dir, "spot", "BTCUSDT")
    first = replay.binance_book_at(snapshot, events, "spot", n=1)
    again = replay.binance_book_at(snapshot, events, "spot", update_id=first.update_id)
    assert first.top(20) == again.top(20)
    assert replay.binance_book_at(snapshot, events, "spot", update_id=snapshot["lastUpdateId"]).applied == 0


def test_it_detects_a_binance_gap(data_dir: Path) -> None:
    for market in ("spot", "usdm"):
        snapshot, events, _ = binance_set(data_dir, market, "BTCUSDT")
        first_applied = next(i for i, e in enumerate(events) if e["u"] > snapshot["lastUpdateId"])
        gapped = events[: first_applied + 3] + events[first_applied + 4 :]
        with pytest.raises(replay.SequenceGap):
            list(replay.binance_books(snapshot, gapped, market))


def test_it_rebuilds_bybit_books_and_detects_a_gap(data_dir: Path) -> None:
    path = data_dir / "bybit" / "orderbook" / "linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"
    messages = replay.read_messages(path)
    books = [b.copy() for b in replay.bybit_books(messages)]
    assert len(books) == 414
    assert books[-1].update_id == 15077365
    assert replay.bybit_book_at(messages, ts=messages[10]["ts"]).update_id == messages[10]["data"]["u"]
    with pytest.raises(replay.SequenceGap):
        list(replay.bybit_books(messages[:5] + messages[6:]))
    # Unchecked mode applies what it is given (to mirror a client that does not check `u`).
    assert list(replay.bybit_books(messages[:5] + messages[6:], check_sequence=False))[-1].update_id == 15077365

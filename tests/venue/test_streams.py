"""watch_order_book through real ccxt.pro clients: ccxt's book equals the independent replay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges.connectivity import async_client
from tests.venue import replay
from tests.venue.helpers import ccxt_levels, eventually, watch_through
from tests.venue.server import VenueEmulator

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]

K = 40  # updates to wait for before comparing
Levels = tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
BINANCE_SETS = {
    "BTC/USDT": (
        "spot",
        "spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json",
        "spot_BTCUSDT_2024-08-08_ws_depth100ms_first300.jsonl.gz",
    ),
    "BTC/USDT:USDT": (
        "usdm",
        "usdm_BTCUSDT_2024-08-08_rest_depth_limit1000.json",
        "usdm_BTCUSDT_2024-08-08_ws_depth0ms_first300.jsonl.gz",
    ),
}
BYBIT_SETS = {
    "BTC/USDT:USDT": "linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz",
    "BTC/USDT": "spot_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz",
}


async def watch_until(
    client: Any, symbol: str, limit: int | None, done: Callable[[Any], bool], timeout: float = 15.0
) -> tuple[Any, Any, Levels, int]:
    """Watch until `done(book)`; nonce, timestamp and levels are read in one step, before anything else runs."""

    async def loop() -> tuple[Any, Any, Levels, int]:
        while True:
            book = await client.watch_order_book(symbol, limit)
            if done(book):
                return book["nonce"], book["timestamp"], ccxt_levels(book), len(book["bids"])

    return await asyncio.wait_for(loop(), timeout)


def binance_set(data_dir: Path, symbol: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    market, snapshot_name, stream_name = BINANCE_SETS[symbol]
    folder = data_dir / "binance" / "orderbook"
    return market, json.loads((folder / snapshot_name).read_text()), replay.read_messages(folder / stream_name)


@pytest.mark.parametrize("symbol", list(BINANCE_SETS))
async def test_it_streams_the_binance_book_ccxt_and_the_replayer_agree_on(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path, symbol: str
) -> None:
    venue_factory()
    market, snapshot, events = binance_set(data_dir, symbol)
    target = [b.update_id for b in replay.binance_books(snapshot, events, market)][K - 1]
    client = async_client("binance")
    try:
        nonce, _, levels, _ = await watch_until(client, symbol, None, lambda b: b["nonce"] >= target)
    finally:
        await client.close()
    expected = replay.binance_book_at(snapshot, events, market, update_id=nonce)
    assert levels == expected.top(20)
    assert expected.applied >= K


@pytest.mark.parametrize("symbol", list(BYBIT_SETS))
async def test_it_streams_the_bybit_book_ccxt_and_the_replayer_agree_on(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path, symbol: str
) -> None:
    venue_factory(shift_timestamps=False)  # recorded ts identify the message ccxt last applied
    messages = replay.read_messages(data_dir / "bybit" / "orderbook" / BYBIT_SETS[symbol])
    target_ts = messages[K]["ts"]
    client = async_client("bybit")
    try:
        _, timestamp, levels, depth = await watch_until(client, symbol, 200, lambda b: b["timestamp"] >= target_ts)
    finally:
        await client.close()
    expected = replay.bybit_book_at(messages, ts=timestamp)
    assert levels == expected.top(20)
    assert depth == 200


async def test_it_derives_bybit_depth_50_from_the_200_level_recording(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(shift_timestamps=False)
    messages = replay.read_messages(data_dir / "bybit" / "orderbook" / BYBIT_SETS["BTC/USDT"])
    client = async_client("bybit")
    try:
        _, timestamp, levels, depth = await watch_until(
            client, "BTC/USDT", None, lambda b: b["timestamp"] >= messages[K]["ts"]
        )
    finally:
        await client.close()
    assert depth == 50  # ccxt's default topic is orderbook.50.BTCUSDT
    assert levels == replay.bybit_book_at(messages, ts=timestamp).top(20)
    assert [s["stream"] for s in venue.state()["subscriptions"]] in ([], ["orderbook.50.BTCUSDT"])


async def test_it_stamps_stream_messages_with_the_present(venue: VenueEmulator) -> None:
    client = async_client("binance")
    try:
        started = time.time() * 1000
        _, timestamp, _, _ = await watch_until(client, "BTC/USDT:USDT", None, lambda b: b["timestamp"] is not None)
        assert started - 5_000 <= timestamp <= time.time() * 1000 + 1_000
    finally:
        await client.close()
    client = async_client("bybit")
    try:
        _, timestamp, _, _ = await watch_until(client, "BTC/USDT", None, lambda b: b["timestamp"] is not None)
        assert started - 5_000 <= timestamp <= time.time() * 1000 + 1_000
    finally:
        await client.close()


async def test_it_closes_the_socket_when_the_recording_ends_and_replays_again_on_resubscribe(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(speed=400.0)
    market, snapshot, events = binance_set(data_dir, "BTC/USDT")
    client = async_client("binance")
    try:
        # 30 s of recording in 75 ms: the socket closes at its end and ccxt has to connect again.
        await watch_through(client, "BTC/USDT", None, lambda: len(venue.requests_to("/ws/")) >= 2)
        # Slow enough that the new REST snapshot (held back up to a second by ccxt's rate limiter)
        # arrives before this replay ends too.
        venue.speed = 10.0
        depth_calls = len(venue.requests_to("/api/v3/depth"))
        book = await watch_through(
            client, "BTC/USDT", None, lambda: len(venue.requests_to("/api/v3/depth")) > depth_calls
        )
        nonce, levels = book["nonce"], ccxt_levels(book)
    finally:
        await client.close()
    assert levels == replay.binance_book_at(snapshot, events, market, update_id=nonce).top(20)


async def test_it_loops_bybit_streams_with_a_fresh_snapshot(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(speed=400.0, on_end="loop", shift_timestamps=False)
    messages = replay.read_messages(data_dir / "bybit" / "orderbook" / BYBIT_SETS["BTC/USDT"])
    client = async_client("bybit")
    try:
        await client.watch_order_book("BTC/USDT", 200)
        await eventually(lambda: any(s["loops"] >= 1 for s in venue.subscriptions()))
        _, timestamp, levels, _ = await watch_until(client, "BTC/USDT", 200, lambda b: True)
    finally:
        await client.close()
    assert levels == replay.bybit_book_at(messages, ts=timestamp).top(20)

"""OKX v5 public market data through the emulator: recorded instruments, REST books, the `books`
stream (verbatim, every CRC32 checksum intact), the control frames and the faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from exchanges.connectivity import async_client, load_markets, translate
from exchanges.symbols import Exchange
from tests.venue import replay
from tests.venue.helpers import ccxt_levels, watch_through
from tests.venue.server import VenueEmulator

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]

K = 40  # updates to wait for before comparing
OKX_SETS = {
    "BTC/USDT": "BTC-USDT_2022-05-13_ws_books.jsonl.gz",
    "UNI/USD:UNI": "UNI-USD-SWAP_2022-05-13_ws_books.jsonl.gz",
    "BTC/USD:BTC-220527": "BTC-USD-220527_2022-05-13_ws_books.jsonl.gz",
}
ALL_TYPES = ["spot", "swap", "future"]


def okx_messages(data_dir: Path, name: str) -> list[dict[str, Any]]:
    return replay.read_messages(data_dir / "okx" / "orderbook" / name)


def okx_client(types: list[str] | None = None) -> Any:
    client = async_client("okx")
    if types:
        client.options["fetchMarkets"] = {"types": types}  # the desk asks for spot + swap only
    return client


def ws_url(venue: VenueEmulator) -> str:
    return f"{venue.url}/okx/ws.okx.com/ws/v5/public"


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> Any:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return message.data if message.data == "pong" else json.loads(message.data)


async def receive_until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15.0) -> list[Any]:
    received = []
    async with asyncio.timeout(timeout):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            received.append(json.loads(message.data))
    return received


# --- REST ---------------------------------------------------------------------------------------------------------


async def test_it_loads_okx_markets_from_the_recorded_instruments(venue: VenueEmulator, data_dir: Path) -> None:
    client = okx_client()
    try:
        markets = await load_markets(client, Exchange.OKX)
    finally:
        await client.close()
    spot_items = json.loads((data_dir / "okx/metadata/rest_instruments_SPOT_2022-05-13_trimmed.json").read_text())
    btc = next(i for i in spot_items["data"] if i["instId"] == "BTC-USDT")
    spot = markets["BTC/USDT"]
    assert spot["info"] == btc and spot["spot"] and spot["id"] == "BTC-USDT"
    assert Decimal(repr(spot["precision"]["price"])) == Decimal(btc["tickSz"])
    assert Decimal(repr(spot["precision"]["amount"])) == Decimal(btc["lotSz"])
    assert Decimal(repr(spot["limits"]["amount"]["min"])) == Decimal(btc["minSz"])
    uni = markets["UNI/USD:UNI"]
    assert uni["inverse"] and uni["swap"] and uni["contractSize"] == 10.0
    assert markets["BTC/USDT:USDT"]["linear"]
    # The desk asks for spot and swap instruments, nothing else.
    assert sorted(q["instType"] for _, p, q in venue.requests) == ["SPOT", "SWAP"]
    assert {p for _, p, _ in venue.requests} == {"/okx/www.okx.com/api/v5/public/instruments"}


async def test_it_loads_the_recorded_futures_when_asked(venue: VenueEmulator) -> None:
    client = okx_client(ALL_TYPES)
    try:
        markets = await client.load_markets()
    finally:
        await client.close()
    future = markets["BTC/USD:BTC-220527"]
    assert future["future"] and future["id"] == "BTC-USD-220527" and future["expiry"] == 1653638400000
    assert sorted(q["instType"] for _, _, q in venue.requests) == ["FUTURES", "SPOT", "SWAP"]


@pytest.mark.parametrize("inst_type", ["SPOT", "SWAP", "FUTURES"])
async def test_it_serves_the_recorded_instruments_verbatim(
    venue: VenueEmulator, data_dir: Path, inst_type: str
) -> None:
    recorded = next((data_dir / "okx/metadata").glob(f"rest_instruments_{inst_type}_2022-05-13_trimmed.json"))
    url = f"{venue.url}/okx/www.okx.com/api/v5/public/instruments?instType={inst_type}"
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        assert r.status == 200 and await r.read() == recorded.read_bytes()


async def test_it_filters_instruments_and_refuses_a_bad_inst_type(venue: VenueEmulator) -> None:
    base = f"{venue.url}/okx/www.okx.com/api/v5/public/instruments"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}?instType=SWAP&instId=UNI-USD-SWAP") as r:
            body = await r.json()
        assert body["code"] == "0" and [i["instId"] for i in body["data"]] == ["UNI-USD-SWAP"]
        async with session.get(f"{base}?instType=OPTION&uly=BTC-USD") as r:
            assert await r.json() == {"code": "0", "data": [], "msg": ""}  # no option recording
        async with session.get(f"{base}?instType=NOPE") as r:
            assert (await r.json())["code"] == "51000"


@pytest.mark.parametrize("symbol", ["BTC/USDT", "UNI/USD:UNI"])
async def test_it_serves_the_rest_book_from_the_recorded_snapshot(
    venue: VenueEmulator, data_dir: Path, symbol: str
) -> None:
    snapshot = okx_messages(data_dir, OKX_SETS[symbol])[0]["data"][0]
    client = okx_client()
    try:
        await client.load_markets()
        book = await client.fetch_order_book(symbol, 50)
    finally:
        await client.close()
    bids, asks = ccxt_levels(book, 100)
    assert bids == [(Decimal(p), Decimal(q)) for p, q, *_ in snapshot["bids"][:50]]
    assert asks == [(Decimal(p), Decimal(q)) for p, q, *_ in snapshot["asks"][:50]]
    assert abs(book["timestamp"] - time.time() * 1000) < 60_000  # shifted to the present
    inst_id = OKX_SETS[symbol].split("_")[0]
    assert ("GET", "/okx/www.okx.com/api/v5/market/books", {"instId": inst_id, "sz": "50"}) in venue.requests


async def test_it_refuses_a_book_it_has_no_recording_for(venue: VenueEmulator) -> None:
    client = okx_client()
    try:
        await client.load_markets()
        with pytest.raises(ccxt.BadSymbol) as caught:
            await client.fetch_order_book("ETH/USDT", 5)  # listed, but no recorded book
    finally:
        await client.close()
    assert translate(caught.value, "okx").error_code == "NOT_FOUND"
    async with aiohttp.ClientSession() as session:
        url = f"{venue.url}/okx/www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=401"
        async with session.get(url) as r:
            assert (await r.json())["code"] == "51000"  # OKX serves at most 400 levels


async def test_it_answers_time_and_recorded_error_bodies(venue: VenueEmulator, data_dir: Path) -> None:
    venue.inject("okx", "http_status", status=429, path="/api/v5/market/books")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{venue.url}/okx/www.okx.com/api/v5/public/time") as r:
            body = await r.json()
        assert body["code"] == "0" and abs(int(body["data"][0]["ts"]) - time.time() * 1000) < 60_000
        async with session.get(f"{venue.url}/okx/www.okx.com/api/v5/market/books?instId=BTC-USDT") as r:
            assert r.status == 429
            assert await r.read() == (data_dir / "okx/errors/http_429_rate_limit_50011.json").read_bytes()
        async with session.get(f"{venue.url}/okx/www.okx.com/api/v5/nothing") as r:
            assert r.status == 404 and {"code", "msg", "data"} == set(await r.json())
    client = okx_client()
    venue.inject("okx", "http_status", status=429, path="/api/v5/market/books")
    try:
        await client.load_markets()
        with pytest.raises(ccxt.RateLimitExceeded):
            await client.fetch_order_book("BTC/USDT", 5)
    finally:
        await client.close()


# --- websocket ----------------------------------------------------------------------------------------------------


async def watch_until(client: Any, symbol: str, done: Callable[[Any], bool], timeout: float = 15.0) -> tuple[Any, Any]:
    async def loop() -> tuple[Any, Any]:
        while True:
            book = await client.watch_order_book(symbol)
            if done(book):
                return book["timestamp"], ccxt_levels(book)

    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.parametrize("symbol", list(OKX_SETS))
async def test_it_streams_the_okx_book_ccxt_and_the_replayer_agree_on(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path, symbol: str
) -> None:
    venue = venue_factory(shift_timestamps=False)  # recorded ts identify the message ccxt last applied
    messages = okx_messages(data_dir, OKX_SETS[symbol])
    target_ts = int(messages[K]["data"][0]["ts"])
    client = okx_client(ALL_TYPES)
    try:
        timestamp, levels = await watch_until(client, symbol, lambda b: b["timestamp"] >= target_ts)
    finally:
        await client.close()
    expected = replay.checksum_book_at(messages, ts=timestamp)
    assert levels == expected.top(20)
    assert expected.applied >= K
    assert any(p.endswith("/okx/ws.okx.com/ws/v5/public") for _, p, _ in venue.requests)


async def test_it_replays_the_recorded_messages_verbatim_with_every_checksum_intact(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(speed=400.0, shift_timestamps=False)
    recorded = okx_messages(data_dir, OKX_SETS["UNI/USD:UNI"])
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(venue)) as ws:
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "UNI-USD-SWAP"}]})
        assert await receive(ws) == {"event": "subscribe", "arg": {"channel": "books", "instId": "UNI-USD-SWAP"}}
        received = await receive_until_closed(ws)  # the socket closes when the recording ends
    assert received == recorded
    assert len(list(replay.checksum_books(received))) == len(recorded)  # raises on any checksum mismatch


async def test_it_moves_stream_timestamps_to_the_present_and_keeps_the_checksums(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(speed=400.0)
    recorded = okx_messages(data_dir, OKX_SETS["BTC/USD:BTC-220527"])
    started = time.time() * 1000
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(venue)) as ws:
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USD-220527"}]})
        await receive(ws)
        received = await receive_until_closed(ws)
    stamps = [int(m["data"][0]["ts"]) for m in received]
    assert started - 1_000 <= stamps[0] <= time.time() * 1000 and stamps == sorted(stamps)
    for got, want in zip(received, recorded, strict=True):
        assert {**got["data"][0], "ts": None} == {**want["data"][0], "ts": None}
        assert got["arg"] == want["arg"] and got["action"] == want["action"]
    list(replay.checksum_books(received))


async def test_it_answers_control_frames_as_okx_does(venue: VenueEmulator, data_dir: Path) -> None:
    control = replay.read_messages(data_dir / "okx/ws_control/2022-05-13_subscribe_requests_and_events.jsonl")
    recorded_ack = next(m for m in control if m.get("arg", {}) == {"channel": "books", "instId": "BTC-USDT"})
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(venue)) as ws:
        await ws.send_str("ping")
        assert await receive(ws) == "pong"
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]})
        refused = await receive(ws)
        assert refused["event"] == "error" and refused["code"] == "60018" and "ETH-USDT" in refused["msg"]
        await ws.send_str("{not json")
        assert (await receive(ws))["code"] == "60012"
        await ws.send_json({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
        assert (await receive(ws))["event"] == "subscribe"  # acknowledged, silent
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
        assert await receive(ws) == recorded_ack  # the recorded acknowledgement, exactly
        snapshot = await receive(ws)
        assert snapshot["action"] == "snapshot" and len(snapshot["data"][0]["bids"]) == 400
        assert [s["stream"] for s in venue.subscriptions()] == ["books:BTC-USDT"]
        await ws.send_json({"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
        while (reply := await receive(ws)).get("event") != "unsubscribe":
            pass
        assert reply == {"event": "unsubscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}}
        assert venue.subscriptions() == []


async def test_a_gap_breaks_the_next_checksum(venue_factory: Callable[..., VenueEmulator]) -> None:
    venue = venue_factory(speed=400.0, shift_timestamps=False)
    venue.inject("okx", "gap", stream="BTC-USDT", after=3)
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(venue)) as ws:
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
        await receive(ws)
        received = await receive_until_closed(ws)
    with pytest.raises(replay.ChecksumMismatch):
        list(replay.checksum_books(received))
    # Snapshot + 2 updates sent, the 4th recorded message skipped: intact up to there, broken right after.
    assert len(list(replay.checksum_books(received[:3]))) == 3
    with pytest.raises(replay.ChecksumMismatch):
        list(replay.checksum_books(received[:4]))


async def test_a_stalled_stream_still_answers_pings(venue_factory: Callable[..., VenueEmulator]) -> None:
    venue = venue_factory(speed=50.0)
    venue.inject("okx", "stall", stream="BTC-USDT", after=2)
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(venue)) as ws:
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
        await receive(ws)
        assert [(await receive(ws))["action"] for _ in range(2)] == ["snapshot", "update"]
        await ws.send_str("ping")
        assert await receive(ws) == "pong"
        with pytest.raises(asyncio.TimeoutError):
            await receive(ws, timeout=0.5)


async def test_ccxt_reconnects_after_a_dropped_okx_socket(venue_factory: Callable[..., VenueEmulator]) -> None:
    venue = venue_factory()
    client = okx_client()
    try:
        await client.watch_order_book("BTC/USDT")
        venue.inject("okx", "drop", stream="BTC-USDT")
        await watch_through(client, "BTC/USDT", None, lambda: len(venue.requests_to("/ws/v5/public")) >= 2)
        book = await asyncio.wait_for(client.watch_order_book("BTC/USDT"), 10)
    finally:
        await client.close()
    assert book["bids"] and book["asks"]
    assert len(venue.requests_to("/ws/v5/public")) >= 2

"""Fault injection through real ccxt clients, and what our error taxonomy makes of each fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from exchanges.connectivity import async_client, translate
from tests.venue import replay
from tests.venue.faults import FaultError
from tests.venue.helpers import ccxt_levels, eventually, watch_through
from tests.venue.server import VenueEmulator

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]

SPOT_SNAPSHOT = "binance/orderbook/spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json"
SPOT_STREAM = "binance/orderbook/spot_BTCUSDT_2024-08-08_ws_depth100ms_first300.jsonl.gz"
BYBIT_LINEAR = "bybit/orderbook/linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"
# Resyncing re-fetches a 1000-level snapshot, which ccxt's rate limiter delays by up to a second:
# the replays must last longer than that (USD-M BTCUSDT is 15.6 s of market time, spot 30 s).
RESYNC_SPEED = {"BTC/USDT": 12.0, "BTC/USDT:USDT": 6.0}


async def fetch_error(exchange: str, symbol: str = "BTC/USDT", timeout_ms: int | None = None) -> BaseException:
    client = async_client(exchange)
    if timeout_ms is not None:
        client.timeout = timeout_ms
    try:
        await client.load_markets()
        await client.fetch_order_book(symbol, 5)
    except Exception as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError("fetch_order_book succeeded")


async def next_book(client: Any, symbol: str, limit: int | None = None, timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(client.watch_order_book(symbol, limit), timeout)


# --- HTTP -------------------------------------------------------------------------------------------------------


async def test_it_rate_limits_binance_with_429_and_code_1003(venue: VenueEmulator) -> None:
    venue.inject("binance", "http_status", status=429, path="/api/v3/depth")
    exc = await fetch_error("binance")
    # ccxt's binance.handle_errors raises DDoSProtection (not RateLimitExceeded) for both 418 and 429.
    assert isinstance(exc, ccxt.DDoSProtection)
    assert '"code":-1003' in str(exc)
    assert translate(exc, "binance").error_code == "RATE_LIMITED"


@pytest.mark.parametrize("status", [429, 403])
async def test_it_rate_limits_bybit(venue: VenueEmulator, status: int) -> None:
    venue.inject("bybit", "http_status", status=status, path="/v5/market/orderbook")
    exc = await fetch_error("bybit")
    assert isinstance(exc, ccxt.RateLimitExceeded)
    assert translate(exc, "bybit").error_code == "RATE_LIMITED"


async def test_it_bans_binance_with_418(venue: VenueEmulator) -> None:
    venue.inject("binance", "http_status", status=418)
    exc = await fetch_error("binance")
    assert isinstance(exc, ccxt.DDoSProtection) and "IP banned until" in str(exc)
    error = translate(exc, "binance")
    assert error.error_code == "RATE_LIMITED" and "ban" in str(error.detail)


@pytest.mark.parametrize(
    ("exchange", "status"), [("binance", 500), ("binance", 502), ("binance", 503), ("bybit", 502), ("bybit", 503)]
)
async def test_it_answers_5xx_from_the_gateway(venue: VenueEmulator, exchange: str, status: int) -> None:
    venue.inject(exchange, "http_status", status=status, path="orderbook" if exchange == "bybit" else "depth")
    exc = await fetch_error(exchange)
    assert isinstance(exc, ccxt.ExchangeNotAvailable)
    assert translate(exc, exchange).error_code == "EXCHANGE_UNAVAILABLE"


async def test_it_can_answer_5xx_with_the_exchanges_own_json_bodies(venue: VenueEmulator) -> None:
    venue.inject("binance", "http_status", status=500, body="-1001", path="depth")
    binance_exc = await fetch_error("binance")
    venue.inject("bybit", "http_status", status=500, body="10016", path="orderbook")  # recorded body
    bybit_exc = await fetch_error("bybit")
    # What ccxt 4.5.90 makes of them: the body code wins over the HTTP status.
    assert type(binance_exc) is ccxt.OperationFailed and "-1001" in str(binance_exc)
    assert type(bybit_exc) is ccxt.ExchangeError and "10016" in str(bybit_exc)
    assert translate(binance_exc, "binance").error_code == "EXCHANGE_UNAVAILABLE"


async def test_it_is_unavailable_when_the_venue_refuses_connections(venue: VenueEmulator) -> None:
    venue.stop()  # the port is closed now: connection refused
    for exchange in ("binance", "bybit"):
        exc = await fetch_error(exchange)
        assert isinstance(exc, ccxt.NetworkError)
        assert translate(exc, exchange).error_code == "EXCHANGE_UNAVAILABLE"


async def test_it_is_unavailable_when_latency_exceeds_the_client_timeout(venue: VenueEmulator) -> None:
    venue.inject("bybit", "latency", ms=2_000, path="orderbook")
    exc = await fetch_error("bybit", timeout_ms=300)
    assert isinstance(exc, ccxt.RequestTimeout)
    assert translate(exc, "bybit").error_code == "EXCHANGE_UNAVAILABLE"


async def test_it_counts_faults_and_keeps_unbounded_ones_until_cleared(venue: VenueEmulator) -> None:
    venue.inject("binance", "http_status", status=503, path="depth", count=2)
    client = async_client("binance")
    try:
        await client.load_markets()
        for _ in range(2):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await client.fetch_order_book("BTC/USDT", 5)
        assert (await client.fetch_order_book("BTC/USDT", 5))["bids"]
        venue.inject("binance", "http_status", status=503, path="depth", count=None)
        for _ in range(3):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await client.fetch_order_book("BTC/USDT", 5)
        venue.clear_faults()
        assert (await client.fetch_order_book("BTC/USDT", 5))["bids"]
    finally:
        await client.close()
    with pytest.raises(FaultError):
        venue.inject("binance", "meteor")


async def test_it_takes_faults_over_http_and_reports_its_state(venue: VenueEmulator) -> None:
    client = async_client("bybit")
    try:
        async with aiohttp.ClientSession() as session:
            fault = {"exchange": "bybit", "kind": "http_status", "status": 429, "count": None}
            async with session.post(f"{venue.url}/_control/faults", json=fault) as r:
                assert r.status == 201
            async with session.post(f"{venue.url}/_control/faults", json={"exchange": "bybit", "kind": "x"}) as r:
                assert r.status == 400
            with pytest.raises(ccxt.RateLimitExceeded):
                await client.load_markets()
            async with session.delete(f"{venue.url}/_control/faults") as r:
                assert (await r.json())["faults"] == []
            await client.load_markets()
            await next_book(client, "BTC/USDT:USDT")
            async with session.get(f"{venue.url}/_control/state") as r:
                state = await r.json()
    finally:
        await client.close()
    assert {
        "method": "GET",
        "path": "/bybit/api.bybit.com/v5/market/instruments-info",
        "query": {"category": "spot"},
    } in state["requests"]
    [sub] = state["subscriptions"]
    assert sub["exchange"] == "bybit" and sub["stream"] == "orderbook.50.BTCUSDT" and sub["market"] == "linear"
    assert sub["state"] == "streaming"


# --- websockets -------------------------------------------------------------------------------------------------


async def test_it_drops_a_binance_socket_and_ccxt_resyncs(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(speed=RESYNC_SPEED["BTC/USDT"])
    snapshot = json.loads((data_dir / SPOT_SNAPSHOT).read_text())
    events = replay.read_messages(data_dir / SPOT_STREAM)
    venue.inject("binance", "drop", stream="btcusdt@depth", after=30)
    client = async_client("binance")
    try:
        # Resynced: a second connection and a second REST snapshot, then a book from the new replay.
        book = await watch_through(client, "BTC/USDT", None, lambda: len(venue.requests_to("/api/v3/depth")) >= 2)
        nonce, levels = book["nonce"], ccxt_levels(book)
    finally:
        await client.close()
    assert levels == replay.binance_book_at(snapshot, events, "spot", update_id=nonce).top(20)
    assert len(venue.requests_to("/stream.binance.com/ws")) == 2
    assert venue.state()["faults"] == []  # the drop fired


async def test_it_drops_a_bybit_socket_and_ccxt_resyncs(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(shift_timestamps=False)
    messages = replay.read_messages(data_dir / BYBIT_LINEAR)
    venue.inject("bybit", "drop", stream="orderbook.200.BTCUSDT", after=10)
    seen: list[int] = []
    client = async_client("bybit")

    def restarted() -> bool:
        # The new connection starts over from the snapshot: the book's time goes back.
        ts = client.orderbooks["BTC/USDT:USDT"]["timestamp"]
        seen.append(ts)
        return len(seen) > 1 and ts < max(seen)

    try:
        book = await watch_through(client, "BTC/USDT:USDT", 200, restarted)
        timestamp, levels = book["timestamp"], ccxt_levels(book)
    finally:
        await client.close()
    assert levels == replay.bybit_book_at(messages, ts=timestamp).top(20)
    assert len(venue.requests_to("/v5/public/linear")) == 2


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USDT:USDT"])
async def test_ccxt_detects_a_binance_sequence_gap(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path, symbol: str
) -> None:
    venue = venue_factory(speed=RESYNC_SPEED[symbol])
    venue.inject("binance", "gap", stream="btcusdt@depth", after=20)
    client = async_client("binance")
    try:
        with pytest.raises(ccxt.InvalidNonce) as caught:  # ccxt raises ChecksumError, an InvalidNonce
            while True:
                await next_book(client, symbol)
        assert isinstance(caught.value, ccxt.ChecksumError)
        book = await next_book(client, symbol)  # watching again resubscribes: a fresh, consistent replay
        assert book["nonce"] is not None
        assert [s["skipped"] for s in venue.subscriptions()] == [0]  # the new subscription is whole
    finally:
        await client.close()


async def test_ccxt_does_not_detect_a_bybit_gap(venue_factory: Callable[..., VenueEmulator], data_dir: Path) -> None:
    """ccxt's bybit handler never checks `u`: a missed delta silently corrupts its book."""
    venue = venue_factory(shift_timestamps=False)
    messages = replay.read_messages(data_dir / BYBIT_LINEAR)
    venue.inject("bybit", "gap", stream="orderbook.200.BTCUSDT", after=5)
    venue.inject("bybit", "stall", stream="orderbook.200.BTCUSDT", after=20)  # exactly 20 messages go out
    sent = messages[:5] + messages[6:21]
    client = async_client("bybit")
    try:
        while (book := await next_book(client, "BTC/USDT:USDT", 200))["timestamp"] != sent[-1]["ts"]:
            pass
        levels = ccxt_levels(book, 200)
    finally:
        await client.close()
    assert levels == replay.bybit_book_at(sent, ts=sent[-1]["ts"], check_sequence=False).top(200)
    assert levels != replay.bybit_book_at(messages, ts=sent[-1]["ts"]).top(200)
    with pytest.raises(replay.SequenceGap):
        list(replay.bybit_books(sent))


async def test_it_stalls_a_stream_with_the_socket_open(
    venue_factory: Callable[..., VenueEmulator], data_dir: Path
) -> None:
    venue = venue_factory(shift_timestamps=False)
    messages = replay.read_messages(data_dir / BYBIT_LINEAR)
    venue.inject("bybit", "stall", stream="orderbook.200.BTCUSDT", after=8)
    client = async_client("bybit")
    try:
        while (await next_book(client, "BTC/USDT:USDT", 200))["timestamp"] != messages[7]["ts"]:
            pass
        await eventually(lambda: [s["state"] for s in venue.subscriptions()] == ["stalled"])
        with pytest.raises(asyncio.TimeoutError):
            await next_book(client, "BTC/USDT:USDT", 200, timeout=0.5)
        [sub] = venue.subscriptions()
        assert sub["sent"] == 8 and sub["state"] == "stalled"  # nothing more was sent, the socket is still open
    finally:
        await client.close()


async def test_a_malformed_frame_breaks_the_client_not_the_server(venue: VenueEmulator) -> None:
    loop = asyncio.get_running_loop()
    seen: list[BaseException] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context["exception"]))
    venue.inject("binance", "malformed", stream="btcusdt@depth", after=10)
    client = async_client("binance")
    try:
        with pytest.raises(asyncio.TimeoutError):
            while True:
                await next_book(client, "BTC/USDT", timeout=1.0)
        # ccxt's receive loop dies on the invalid JSON (the error surfaces in the loop's exception
        # handler) and the stream goes quiet: only a stale-stream check notices.
        await eventually(lambda: seen)
        assert "JSON" in type(seen[0]).__name__ or "json" in str(seen[0]).lower() or "decode" in str(seen[0]).lower()
    finally:
        await client.close()
        loop.set_exception_handler(previous)
    other = async_client("binance")  # the server carries on
    try:
        assert (await next_book(other, "BTC/USDT"))["bids"]
    finally:
        await other.close()

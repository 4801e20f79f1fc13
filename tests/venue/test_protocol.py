"""Wire-level details ccxt does not exercise: combined streams, pings, acks, refusals, HTTP-level faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import ccxt
import pytest

from exchanges.connectivity import async_client, translate
from tests.venue.server import VenueEmulator

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]


async def receive_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def test_it_serves_binance_combined_streams(venue: VenueEmulator) -> None:
    url = f"{venue.url}/binance/stream.binance.com/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        first = await receive_json(ws)
        assert first["stream"] == "btcusdt@depth@100ms" and first["data"]["e"] == "depthUpdate"
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 7})
        while "result" not in (reply := await receive_json(ws)):
            pass
        assert reply == {"result": ["btcusdt@depth@100ms"], "id": 7}


async def test_it_acks_binance_subscriptions_before_any_data(venue: VenueEmulator) -> None:
    url = f"{venue.url}/binance/fstream.binance.com/public/ws/0"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 1})
        assert await receive_json(ws) == {"result": None, "id": 1}
        event = await receive_json(ws)
        assert event["e"] == "depthUpdate" and {"U", "u", "pu", "E", "T"} <= set(event)


@pytest.mark.parametrize("category", ["spot", "linear"])
async def test_it_answers_bybit_pings_and_refuses_unrecorded_books(venue: VenueEmulator, category: str) -> None:
    url = f"{venue.url}/bybit/stream.bybit.com/v5/public/{category}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"op": "ping", "req_id": "9"})
        pong = await receive_json(ws)
        if category == "spot":
            assert pong["op"] == "pong" and pong["req_id"] == "9" and pong["args"][0].isdigit()
        else:
            assert pong["ret_msg"] == "pong" and pong["op"] == "ping" and pong["success"] is True
        await ws.send_json({"op": "subscribe", "req_id": "10", "args": ["orderbook.50.XRPUSDT"]})
        refused = await receive_json(ws)
        assert (
            refused["success"] is False and refused["req_id"] == "10" and "orderbook.50.XRPUSDT" in refused["ret_msg"]
        )
        await ws.send_json({"op": "subscribe", "req_id": "11", "args": ["orderbook.1000.BTCUSDT"]})
        assert (await receive_json(ws))["success"] is False  # deeper than the 200-level recording
        await ws.send_json({"op": "subscribe", "req_id": "12", "args": ["orderbook.200.BTCUSDT"]})
        ack = await receive_json(ws)
        assert ack["success"] is True and ack["op"] == "subscribe" and ack["req_id"] == "12"
        snapshot = await receive_json(ws)
        assert snapshot["type"] == "snapshot" and len(snapshot["data"]["b"]) == 200


async def test_it_resets_http_connections_on_request(venue: VenueEmulator) -> None:
    # count=None: aiohttp quietly retries a request whose pooled connection was reset, once.
    venue.inject("binance", "drop", on="http", path="/api/v3/depth", count=None)
    client = async_client("binance")
    try:
        await client.load_markets()
        with pytest.raises(ccxt.NetworkError) as caught:
            await client.fetch_order_book("BTC/USDT", 5)
    finally:
        await client.close()
    assert translate(caught.value, "binance").error_code == "EXCHANGE_UNAVAILABLE"


@pytest.mark.parametrize(("exchange", "path"), [("bybit", "/v5/market/orderbook"), ("binance", "/api/v3/depth")])
async def test_a_malformed_http_body_gives_ccxt_an_empty_book(venue: VenueEmulator, exchange: str, path: str) -> None:
    """ccxt 4.5.90 does not raise on a 200 whose body is not JSON: callers must refuse empty books."""
    venue.inject(exchange, "malformed", on="http", path=path)
    client = async_client(exchange)
    try:
        await client.load_markets()
        book = await client.fetch_order_book("BTC/USDT", 5)
    finally:
        await client.close()
    assert book["bids"] == [] and book["asks"] == []

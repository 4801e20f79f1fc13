"""Markets and REST order books through real ccxt clients against the emulator."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import aiohttp
import ccxt
import pytest

from exchanges.connectivity import async_client, load_markets, translate
from exchanges.symbols import Exchange
from tests.venue.helpers import ccxt_levels
from tests.venue.server import VenueEmulator

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]


def _filters(info: dict, symbol: str) -> dict[str, dict]:
    item = next(s for s in info["symbols"] if s["symbol"] == symbol)
    return {f["filterType"]: f for f in item["filters"]}


async def test_it_loads_binance_markets_from_the_recorded_exchange_info(venue: VenueEmulator, data_dir: Path) -> None:
    client = async_client("binance")
    try:
        markets = await load_markets(client, Exchange.BINANCE)
    finally:
        await client.close()
    spot, perp = markets["BTC/USDT"], markets["BTC/USDT:USDT"]
    assert spot["spot"] and spot["id"] == "BTCUSDT"
    assert perp["linear"] and perp["swap"] and perp["id"] == "BTCUSDT"
    for market, name in (
        (spot, "spot_exchangeInfo_2021-10-12_trimmed.json"),
        (perp, "usdm_exchangeInfo_2021-07-22_trimmed.json"),
    ):
        filters = _filters(json.loads((data_dir / "binance/metadata" / name).read_text()), "BTCUSDT")
        assert Decimal(repr(market["precision"]["price"])) == Decimal(filters["PRICE_FILTER"]["tickSize"])
        assert Decimal(repr(market["precision"]["amount"])) == Decimal(filters["LOT_SIZE"]["stepSize"])
        assert Decimal(repr(market["limits"]["amount"]["min"])) == Decimal(filters["LOT_SIZE"]["minQty"])
    # load_markets needs nothing but the two exchangeInfo documents.
    assert sorted(path for _, path, _ in venue.requests) == [
        "/binance/api.binance.com/api/v3/exchangeInfo",
        "/binance/fapi.binance.com/fapi/v1/exchangeInfo",
    ]


async def test_it_loads_bybit_markets_from_the_recorded_instruments(venue: VenueEmulator, data_dir: Path) -> None:
    client = async_client("bybit")
    try:
        markets = await load_markets(client, Exchange.BYBIT)
    finally:
        await client.close()
    recorded = json.loads((data_dir / "bybit/metadata/linear_instruments-info_2026-08-09_trimmed.json").read_text())
    btc_linear = next(i for i in recorded["result"]["list"] if i["symbol"] == "BTCUSDT")
    perp = markets["BTC/USDT:USDT"]
    assert perp["info"] == btc_linear
    assert Decimal(repr(perp["precision"]["price"])) == Decimal(btc_linear["priceFilter"]["tickSize"])
    assert Decimal(repr(perp["limits"]["amount"]["min"])) == Decimal(btc_linear["lotSizeFilter"]["minOrderQty"])
    assert markets["BTC/USDT"]["spot"]
    queries = sorted(str(sorted(q.items())) for _, _, q in venue.requests)
    assert len(queries) == 3  # spot, linear, and ccxt's linear status=PreLaunch probe


async def test_it_serves_the_recorded_instruments_verbatim(venue: VenueEmulator, data_dir: Path) -> None:
    recorded = (data_dir / "bybit/metadata/spot_instruments-info_2026-08-09_trimmed.json").read_bytes()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{venue.url}/bybit/api.bybit.com/v5/market/instruments-info?category=spot") as r:
            assert await r.read() == recorded
        async with session.get(f"{venue.url}/binance/fapi.binance.com/fapi/v1/exchangeInfo") as r:
            assert (
                await r.read() == (data_dir / "binance/metadata/usdm_exchangeInfo_2021-07-22_trimmed.json").read_bytes()
            )


@pytest.mark.parametrize(
    ("symbol", "snapshot_file"),
    [
        ("BTC/USDT", "spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json"),
        ("BTC/USDT:USDT", "usdm_BTCUSDT_2024-08-08_rest_depth_limit1000.json"),
    ],
)
async def test_it_serves_the_binance_rest_snapshot(
    venue: VenueEmulator, data_dir: Path, symbol: str, snapshot_file: str
) -> None:
    recorded = json.loads((data_dir / "binance/orderbook" / snapshot_file).read_text())
    client = async_client("binance")
    try:
        book = await client.fetch_order_book(symbol, 100)
    finally:
        await client.close()
    bids, asks = ccxt_levels(book, 100)
    assert bids == [(Decimal(p), Decimal(q)) for p, q in recorded["bids"][:100]]
    assert asks == [(Decimal(p), Decimal(q)) for p, q in recorded["asks"][:100]]
    assert book["nonce"] == recorded["lastUpdateId"]


@pytest.mark.parametrize(
    ("symbol", "stream_file"),
    [
        ("BTC/USDT", "spot_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"),
        ("BTC/USDT:USDT", "linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"),
    ],
)
async def test_it_serves_the_bybit_rest_book_from_the_recorded_snapshot(
    venue: VenueEmulator, data_dir: Path, symbol: str, stream_file: str
) -> None:
    from tests.venue.replay import read_messages

    snapshot = read_messages(data_dir / "bybit/orderbook" / stream_file)[0]
    client = async_client("bybit")
    try:
        book = await client.fetch_order_book(symbol, 50)
    finally:
        await client.close()
    bids, asks = ccxt_levels(book, 50)
    assert bids == [(Decimal(p), Decimal(q)) for p, q in snapshot["data"]["b"][:50]]
    assert asks == [(Decimal(p), Decimal(q)) for p, q in snapshot["data"]["a"][:50]]
    async with aiohttp.ClientSession() as session:
        url = f"{venue.url}/bybit/api.bybit.com/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=3"
        async with session.get(url) as r:
            body = await r.json()
    assert body["retCode"] == 0 and body["retMsg"] == "OK" and isinstance(body["time"], int)
    assert set(body["result"]) == {"s", "b", "a", "ts", "u", "seq", "cts"}
    assert len(body["result"]["b"]) == 3


@pytest.mark.parametrize(
    ("exchange", "symbol"), [("binance", "SOL/USDT"), ("bybit", "SOL/USDT"), ("bybit", "DOGE/USDT:USDT")]
)
async def test_it_refuses_a_listed_symbol_it_has_no_recording_for(
    venue: VenueEmulator, exchange: str, symbol: str
) -> None:
    client = async_client(exchange)
    try:
        await client.load_markets()
        if exchange == "bybit" and symbol == "DOGE/USDT:USDT":
            book = await client.fetch_order_book(symbol, 5)  # recorded: served
            assert book["bids"]
            return
        with pytest.raises(ccxt.BadSymbol) as caught:
            await client.fetch_order_book(symbol, 5)
    finally:
        await client.close()
    assert translate(caught.value, exchange).error_code == "NOT_FOUND"


async def test_it_answers_unknown_paths_with_the_exchange_error_shape(venue: VenueEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{venue.url}/binance/api.binance.com/api/v3/nothing") as r:
            assert r.status == 404
            body = await r.json()
            assert set(body) == {"code", "msg"} and body["code"] < 0
        async with session.get(f"{venue.url}/bybit/api.bybit.com/v5/nothing") as r:
            assert r.status == 404
            body = await r.json()
            assert {"retCode", "retMsg", "result", "retExtInfo", "time"} <= set(body)
        async with session.get(f"{venue.url}/binance/api.binance.com/api/v3/time") as r:
            assert abs((await r.json())["serverTime"] - __import__("time").time() * 1000) < 60_000

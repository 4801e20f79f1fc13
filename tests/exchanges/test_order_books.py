"""OrderBook: exact decimals from ccxt floats, contract JSON, trimming, crossed check, Redis store."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges.order_books import (
    DECIMAL_PLACES,
    TICK_SIZE,
    OrderBook,
    StreamState,
    StreamStatus,
    aread_book,
    awrite_book,
    format_decimal,
    read_book,
    read_book_raw,
    read_stream_statuses,
    to_decimal,
    write_book,
    write_stream_status,
)
from exchanges.symbols import Exchange, Instrument, MarketType

BTC_SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
MARKET = {"symbol": "BTC/USDT", "precision": {"price": 0.01, "amount": 1e-05}}


def ccxt_book(bids: list[list[float]], asks: list[list[float]], ts: int = 1726032000123) -> dict:
    return {"bids": bids, "asks": asks, "timestamp": ts, "nonce": 42}


def test_it_keeps_the_exchange_string_of_a_ccxt_float() -> None:
    book = OrderBook.from_ccxt(ccxt_book([[68000.1, 0.5], [68000.0, 0.8]], [[68000.2, 0.3]]), BTC_SPOT, MARKET)
    body = book.to_contract()
    assert body["bids"] == [["68000.1", "0.5"], ["68000", "0.8"]]
    assert body["asks"] == [["68000.2", "0.3"]]
    assert body["ts"] == 1726032000123
    assert body["nonce"] == 42


def test_it_snaps_float_noise_to_the_tick() -> None:
    # 0.1 + 0.2 style noise from arithmetic on floats must not leak into the contract.
    noisy_price = 68000.1 + 1e-9
    noisy_size = 0.1 + 0.2
    book = OrderBook.from_ccxt(ccxt_book([[noisy_price, noisy_size]], [[68000.2, 0.3]]), BTC_SPOT, MARKET)
    assert book.to_contract()["bids"] == [["68000.1", "0.3"]]


def test_it_never_uses_exponent_notation() -> None:
    assert format_decimal(Decimal("6.8E+4")) == "68000"
    assert format_decimal(Decimal("1E-8")) == "0.00000001"
    assert format_decimal(to_decimal(1e-8, Decimal("0.00000001"))) == "0.00000001"
    assert format_decimal(Decimal("0")) == "0"


def test_it_understands_decimal_places_precision() -> None:
    market = {"precision": {"price": 2, "amount": 3}}
    book = OrderBook.from_ccxt(ccxt_book([[68000.129, 1.23449]], [[68001.0, 1.0]]), BTC_SPOT, market, DECIMAL_PLACES)
    assert book.to_contract()["bids"] == [["68000.13", "1.234"]]


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2))
def test_it_round_trips_any_tick_price_through_a_float(price: Decimal) -> None:
    assert to_decimal(float(price), Decimal("0.01")) == price


def test_it_trims_to_the_configured_depth(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ORDER_BOOK_DEPTH = 3
    bids = [[68000.0 - i, 1.0] for i in range(10)]
    asks = [[68001.0 + i, 1.0] for i in range(10)]
    book = OrderBook.from_ccxt(ccxt_book(bids, asks), BTC_SPOT, MARKET)
    assert len(book.bids) == len(book.asks) == 3
    assert len(book.trimmed(2).bids) == 2


def test_it_flags_a_crossed_book() -> None:
    assert OrderBook.from_ccxt(ccxt_book([[68001.0, 1]], [[68000.0, 1]]), BTC_SPOT, MARKET).is_crossed
    assert OrderBook.from_ccxt(ccxt_book([[68000.0, 1]], [[68000.0, 1]]), BTC_SPOT, MARKET).is_crossed
    assert not OrderBook.from_ccxt(ccxt_book([[68000.0, 1]], [[68000.1, 1]]), BTC_SPOT, MARKET).is_crossed
    assert not OrderBook.from_ccxt(ccxt_book([], [[68000.1, 1]]), BTC_SPOT, MARKET).is_crossed


def test_it_falls_back_to_receive_time_when_the_exchange_sends_none() -> None:
    raw = {"bids": [[1.0, 1.0]], "asks": [[2.0, 1.0]], "timestamp": None}
    book = OrderBook.from_ccxt(raw, BTC_SPOT, MARKET, received_ts=1234)
    assert book.ts == 1234


def test_it_round_trips_through_redis() -> None:
    book = OrderBook.from_ccxt(ccxt_book([[68000.1, 0.5]], [[68000.2, 0.3]]), BTC_SPOT, MARKET, venue="emulator")
    write_book(book)
    again = read_book(BTC_SPOT)
    assert again is not None
    assert again.bids == [(Decimal("68000.1"), Decimal("0.5"))]
    assert again.to_contract() == book.to_contract()
    assert read_book_raw(BTC_SPOT)["venue"] == "emulator"  # type: ignore[index]
    assert read_book(Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)) is None


async def test_it_round_trips_through_redis_async() -> None:
    linear = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
    book = OrderBook.from_ccxt(ccxt_book([[68000.1, 0.5]], [[68000.2, 0.3]]), linear, MARKET, TICK_SIZE)
    await awrite_book(book)
    again = await aread_book(linear)
    assert again is not None and again.to_contract() == book.to_contract()


def test_it_stores_stream_status() -> None:
    now = int(time.time() * 1000)
    write_stream_status(StreamStatus("binance:spot:BTCUSDT", StreamState.STALE, now, now, "STREAM_STALE", "quiet", 2))
    status = read_stream_statuses()["binance:spot:BTCUSDT"]
    assert status.state is StreamState.STALE
    assert status.error_code == "STREAM_STALE"
    assert status.reconnects == 2


@pytest.mark.parametrize("text", ["68000.10000000", "0.00100000", "100"])
def test_it_normalises_exchange_strings(text: str) -> None:
    assert format_decimal(to_decimal(text)) == text.rstrip("0").rstrip(".") if "." in text else text

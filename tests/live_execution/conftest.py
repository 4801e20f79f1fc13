"""Fixtures for live-path tests: a trading emulator, the test accounts' keys, its books in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchanges.connectivity import async_client
from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.trading_execution.conftest import pair, published  # noqa: F401 - the same fixtures, shared
from tests.venue.server import VenueEmulator
from tests.venue.trading import TEST_ACCOUNTS

BYBIT_LINEAR_BTC = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
BINANCE_SPOT_BTC = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
QTY = Decimal("0.01")


async def _fetch_books() -> list[OrderBook]:
    """The emulator's books over REST, as OrderBooks with a fresh receive time."""
    books = []
    for instrument, unified, limit in ((BYBIT_LINEAR_BTC, "BTC/USDT:USDT", 50), (BINANCE_SPOT_BTC, "BTC/USDT", 50)):
        client = async_client(instrument.exchange)
        try:
            raw = await client.fetch_order_book(unified, limit)
        finally:
            await client.close()
        bids = [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in raw["bids"]]
        asks = [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in raw["asks"]]
        books.append(OrderBook(instrument.exchange, instrument.symbol, instrument.type, bids, asks,
                               ts=int(time.time() * 1000), source="emulator"))
    return books


@pytest.fixture
def emulator(venue_factory: Callable[..., VenueEmulator], monkeypatch: pytest.MonkeyPatch,
             settings: Any) -> Iterator[VenueEmulator]:
    """A trading emulator, live keys for Binance and Bybit, and its books in Redis."""
    import asyncio

    emulator = venue_factory()
    for name in ("OKX", "BITGET"):
        monkeypatch.delenv(f"{name}_API_KEY", raising=False)
        monkeypatch.delenv(f"{name}_API_SECRET", raising=False)
    for exchange, accounts in TEST_ACCOUNTS.items():
        api_key, secret = next(iter(accounts.items()))
        monkeypatch.setenv(f"{exchange.upper()}_API_KEY", api_key)
        monkeypatch.setenv(f"{exchange.upper()}_API_SECRET", secret)
    for book in asyncio.run(_fetch_books()):
        write_book(book)
    yield emulator

"""The market-data process and the Prices API against the emulator's OKX (recorded 2022 `books`
stream of BTC-USDT spot, real ccxt.pro client): the book reaches Redis as a stream from the
emulator and equals the independent replay of the recording."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.order_books import read_book
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.exchanges.market_data_runner import is_live
from tests.exchanges.stubs import eventually
from tests.venue import replay

try:
    from tests.venue.fixtures import venue, venue_factory  # noqa: F401 - fixtures used by name
except ImportError:  # pragma: no cover - the emulator lives in tests/venue
    pytest.skip("venue emulator (tests/venue/fixtures.py) not available", allow_module_level=True)

pytestmark = [pytest.mark.emulator, pytest.mark.recorded, pytest.mark.django_db(transaction=True)]

OKX_BTC = Instrument(Exchange.OKX, "BTCUSDT", MarketType.SPOT)
OKX_BTC_BOOK = "okx/orderbook/BTC-USDT_2022-05-13_ws_books.jsonl.gz"


async def test_okx_books_stream_into_redis_and_the_api_serves_them(  # type: ignore[no-untyped-def]
        venue_factory, run_marketdata, api, data_dir: Path) -> None:
    venue_factory(speed=1.0, shift_timestamps=False)  # recorded ts name the message the book was built to
    _service, recorder = await run_marketdata({OKX_BTC}, stale_seconds=3600.0)  # 2022 clock: no staleness check
    await eventually(lambda: read_book(OKX_BTC) is not None and is_live(OKX_BTC), timeout=20)
    book = read_book(OKX_BTC)
    assert book is not None and book.venue == "emulator" and book.source == "stream"
    assert book.bids and book.asks and not book.is_crossed
    expected = replay.checksum_book_at(replay.read_messages(data_dir / OKX_BTC_BOOK), ts=book.ts)
    bids, asks = expected.top(len(book.bids))
    assert [(Decimal(p), Decimal(q)) for p, q in book.bids] == bids[: len(book.bids)]
    assert [(Decimal(p), Decimal(q)) for p, q in book.asks] == asks[: len(book.asks)]
    assert [(Decimal(p), Decimal(q)) for p, q in book.asks] == asks[: len(book.asks)]
    await eventually(lambda: any(d["exchange"] == "okx" for d in recorder.of("price_update")))

    response = await asyncio.to_thread(api.get, "/api/prices/okx/BTCUSDT?type=spot")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["source"] == "stream" and data["venue"] == "emulator" and data["exchange"] == "okx"


def test_the_checksum_book_matches_every_recorded_okx_checksum(data_dir: Path) -> None:
    """The recorded BTC-USDT `books` stream: our string book gives OKX's checksum after every message."""
    from exchanges.book_checksums import ChecksumBook

    book = ChecksumBook()
    checked = 0
    for message in replay.read_messages(data_dir / OKX_BTC_BOOK):
        if message.get("action") == "snapshot":
            book = ChecksumBook()
        for update in message["data"]:
            book.apply(update)
            assert book.checksum() == int(update["checksum"]), f"message {checked}"
            checked += 1
    assert checked > 50  # every message of the recording (98)


def test_a_changed_level_changes_the_checksum(data_dir: Path) -> None:
    from exchanges.book_checksums import ChecksumBook

    first = next(iter(replay.read_messages(data_dir / OKX_BTC_BOOK)))
    book = ChecksumBook()
    book.apply(first["data"][0])
    assert book.checksum() == int(first["data"][0]["checksum"])
    best_bid = first["data"][0]["bids"][0]
    book.apply({"bids": [[best_bid[0], "0"]]})  # a level removed that OKX still has (derived variant)
    assert book.checksum() != int(first["data"][0]["checksum"])


async def test_a_lost_okx_update_is_caught_by_its_checksum_and_resynced(  # type: ignore[no-untyped-def]
        venue_factory, run_marketdata, data_dir: Path) -> None:
    """ccxt does not check OKX checksums: the desk does, reports the gap and takes a new snapshot."""
    from exchanges.market_data import SEQUENCE_GAP

    emulator = venue_factory(speed=1.0, shift_timestamps=False)
    _service, recorder = await run_marketdata({OKX_BTC}, stale_seconds=3600.0)
    await eventually(lambda: is_live(OKX_BTC), timeout=20)
    emulator.inject("okx", "gap", stream="BTC-USDT", after=3)
    await eventually(lambda: any(a.get("code") == SEQUENCE_GAP for a in recorder.of("engine_alert")), timeout=15)
    await eventually(lambda: is_live(OKX_BTC), timeout=20)
    book = read_book(OKX_BTC)
    assert book is not None and not book.is_crossed
    expected = replay.checksum_book_at(replay.read_messages(data_dir / OKX_BTC_BOOK), ts=book.ts)
    bids, asks = expected.top(len(book.bids))
    assert [(Decimal(p), Decimal(q)) for p, q in book.bids] == bids[: len(book.bids)]
    assert [(Decimal(p), Decimal(q)) for p, q in book.asks] == asks[: len(book.asks)]

"""Recorded books and labelled test doubles for the detection tests.

Books are the real Binance spot and USD-M BTCUSDT REST depth snapshots of 2024-08-08.
Where a test needs an opportunity that the real books do not hold (spot and perp were
within fees of each other that day), it derives a variant by scaling one book's prices
by a stated factor (`shifted`), and says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.order_books import OrderBook, now_ms
from exchanges.symbols import Exchange, Instrument, MarketType
from trading.detection import PairConfig
from trading.spreads import Direction

SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
PERP = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.LINEAR)
SPOT_FEE = Decimal("0.001")  # Binance spot default taker (ccxt market `taker`)
PERP_FEE = Decimal("0.0005")  # Binance USD-M default taker
DEPTH = 20


def recorded_book(data_dir: Path, instrument: Instrument, *, received_ts: int | None = None,
                  depth: int = DEPTH) -> OrderBook:
    kind = "spot" if instrument.type is MarketType.SPOT else "usdm"
    raw = json.loads((data_dir / "binance" / "orderbook" /
                      f"{kind}_{instrument.symbol}_2024-08-08_rest_depth_limit1000.json").read_text())
    received = received_ts if received_ts is not None else now_ms()
    return OrderBook(
        instrument.exchange, instrument.symbol, instrument.type,
        [(Decimal(p), Decimal(q)) for p, q in raw["bids"][:depth]],
        [(Decimal(p), Decimal(q)) for p, q in raw["asks"][:depth]],
        ts=received, received_ts=received, source="stream",
    )


def shifted(book: OrderBook, factor: str | Decimal, *, received_ts: int | None = None) -> OrderBook:
    """A derived variant: every price × factor (sizes unchanged)."""
    f = Decimal(factor)
    received = received_ts if received_ts is not None else book.received_ts
    return OrderBook(
        book.exchange, book.symbol, book.type,
        [(p * f, q) for p, q in book.bids], [(p * f, q) for p, q in book.asks],
        ts=received, received_ts=received, venue=book.venue, source=book.source,
    )


def aged(book: OrderBook, received_ts: int) -> OrderBook:
    return OrderBook(book.exchange, book.symbol, book.type, list(book.bids), list(book.asks),
                     ts=received_ts, received_ts=received_ts, venue=book.venue, source=book.source)


def pair_config(pair_id: str = "spot_perp_btc", *, threshold: str = "0.05", qty: str = "0.01",
                direction: str = "auto", auto_execute: bool = False,
                leg1: Instrument = SPOT, leg2: Instrument = PERP) -> PairConfig:
    return PairConfig(pair_id, leg1, leg2, Decimal(qty), Decimal(threshold), Direction(direction), auto_execute)


def make_pair(pair_id: str = "spot_perp_btc", **fields: Any) -> Any:
    from trading.models import Pair

    values: dict[str, Any] = {
        "leg1_exchange": "binance", "leg1_symbol": "BTCUSDT", "leg1_type": "spot",
        "leg2_exchange": "binance", "leg2_symbol": "BTCUSDT", "leg2_type": "linear",
        "threshold": Decimal("0.05"), "qty": Decimal("0.01"), "total_amount": Decimal("100000"),
        "direction": "auto", "enabled": True,
    }
    values.update(fields)
    return Pair.objects.create(id=pair_id, **values)


class RecordingPublisher:
    """Test double for `arbsite.events.publish`: keeps every (event, data), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> bool:
        self.events.append((event, dict(data)))
        return True

    def named(self, name: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == name]


class RecordingRecorder:
    """Test double for `record_transition`: keeps what would have been written."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, str]] = []

    def __call__(self, decision: Any, transition: Any, source: str) -> None:
        self.calls.append((decision, transition, source))


class RecordingAutoExecution:
    """Test double for the auto-execution hook."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, pair: PairConfig, decision: Any) -> bool:
        self.calls.append(pair.id)
        return True


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def eventually_in_thread(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """`eventually` for checks that touch the database (the ORM refuses the event loop)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)

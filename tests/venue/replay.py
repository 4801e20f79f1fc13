"""An independent order-book rebuilder: recorded snapshot + diffs -> the book, by each exchange's rules.

Pure functions with no ccxt and no emulator import, so tests can compare what ccxt built through
the emulator against a second implementation of the documented sync rules (data/README.md):

- Binance spot: drop events with u <= lastUpdateId; the first applied event has
  U <= lastUpdateId + 1 <= u; afterwards every event has U == previous u + 1.
- Binance USD-M: drop events with u < lastUpdateId; the first applied event has
  U <= lastUpdateId <= u; afterwards every event has pu == previous u.
- Bybit v5: the snapshot replaces the book, each delta sets levels, qty "0" deletes; u is consecutive.
- OKX v5 `books` (and Bitget `books`): the snapshot replaces the book, each update sets levels, size
  "0" deletes; after every message the CRC32 (signed 32-bit) of `bid1px:bid1sz:ask1px:ask1sz:...`
  over the top 25 levels, with the price and size strings as sent, equals the message's `checksum`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.book_checksums import crc32_checksum  # pure: the emulator stays free of Django

Level = tuple[Decimal, Decimal]


class SequenceGap(ValueError):
    """The diff stream does not continue the book: the consumer must resync from a new snapshot."""


class ChecksumMismatch(SequenceGap):
    """The rebuilt book's CRC32 is not the one the exchange sent: an update was lost or corrupted."""


@dataclass
class Book:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    update_id: int | None = None
    timestamp_ms: int | None = None
    applied: int = 0  # diff messages applied since the snapshot

    def top(self, depth: int = 20) -> tuple[list[Level], list[Level]]:
        bids = sorted(self.bids.items(), key=lambda level: level[0], reverse=True)[:depth]
        asks = sorted(self.asks.items(), key=lambda level: level[0])[:depth]
        return bids, asks

    def copy(self) -> Book:
        return Book(dict(self.bids), dict(self.asks), self.update_id, self.timestamp_ms, self.applied)

    def apply(self, bids: Iterable[list[str]], asks: Iterable[list[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price_text, qty_text in levels:
                price, qty = Decimal(price_text), Decimal(qty_text)
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty


def read_messages(path: Path | str) -> list[dict[str, Any]]:
    """The exchange messages of a recorded stream file (unwrapping `msg` and combined-stream `data`)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    messages = []
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            message = record.get("msg", record)
            if "stream" in message and "data" in message:
                message = message["data"]
            messages.append(message)
    return messages


def _snapshot_book(snapshot: dict[str, Any]) -> Book:
    book = Book(update_id=int(snapshot["lastUpdateId"]), timestamp_ms=snapshot.get("T") or snapshot.get("E"))
    book.apply(snapshot.get("bids", []), snapshot.get("asks", []))
    return book


def binance_books(snapshot: dict[str, Any], events: Iterable[dict[str, Any]], market: str = "spot") -> Iterator[Book]:
    """Yield the book after each applied diff event (the same object, mutated: copy it to keep it)."""
    if market not in ("spot", "usdm"):
        raise ValueError("market must be 'spot' or 'usdm'")
    book = _snapshot_book(snapshot)
    last_id = book.update_id
    assert last_id is not None
    started = False
    for event in events:
        first, final = int(event["U"]), int(event["u"])
        if not started:
            if market == "spot":
                if final <= last_id:
                    continue
                if not first <= last_id + 1 <= final:
                    raise SequenceGap(f"first event U={first} u={final} does not cover lastUpdateId+1={last_id + 1}")
            else:
                if final < last_id:
                    continue
                if not first <= last_id <= final:
                    raise SequenceGap(f"first event U={first} u={final} does not cover lastUpdateId={last_id}")
            started = True
        elif market == "spot" and first != last_id + 1:
            raise SequenceGap(f"U={first} after u={last_id}")
        elif market == "usdm" and int(event["pu"]) != last_id:
            raise SequenceGap(f"pu={event['pu']} after u={last_id}")
        book.apply(event.get("b", []), event.get("a", []))
        last_id = final
        book.update_id = final
        book.timestamp_ms = int(event.get("E", 0)) or book.timestamp_ms
        book.applied += 1
        yield book


def binance_book_at(
    snapshot: dict[str, Any],
    events: Iterable[dict[str, Any]],
    market: str = "spot",
    *,
    update_id: int | None = None,
    n: int | None = None,
) -> Book:
    """The book once `update_id` is reached (or after `n` applied events); the snapshot itself when neither."""
    if update_id is not None and update_id == int(snapshot["lastUpdateId"]):
        return _snapshot_book(snapshot)
    if update_id is None and not n:
        return _snapshot_book(snapshot)
    for book in binance_books(snapshot, events, market):
        if (update_id is not None and book.update_id == update_id) or (n is not None and book.applied == n):
            return book.copy()
    raise LookupError(f"update id {update_id} / message {n} not reached by the recording")


def bybit_books(messages: Iterable[dict[str, Any]], *, check_sequence: bool = True) -> Iterator[Book]:
    """Yield the book after each message, snapshot included (the same object, mutated).

    `check_sequence=False` applies deltas whatever their `u`, like a client that never checks it.
    """
    book: Book | None = None
    for message in messages:
        data = message["data"]
        update_id = int(data["u"])
        if message.get("type") == "snapshot":
            book = Book()
            book.apply(data.get("b", []), data.get("a", []))
        else:
            if book is None:
                raise SequenceGap("delta before any snapshot")
            if check_sequence and book.update_id is not None and update_id != book.update_id + 1:
                raise SequenceGap(f"u={update_id} after u={book.update_id}")
            book.apply(data.get("b", []), data.get("a", []))
            book.applied += 1
        book.update_id = update_id
        book.timestamp_ms = int(message["ts"])
        yield book


def bybit_book_at(
    messages: Iterable[dict[str, Any]],
    *,
    check_sequence: bool = True,
    update_id: int | None = None,
    ts: int | None = None,
    n: int | None = None,
) -> Book:
    """The book at an update id, a message timestamp, or after `n` messages (1 = the snapshot alone)."""
    for index, book in enumerate(bybit_books(messages, check_sequence=check_sequence), start=1):
        if (
            (update_id is not None and book.update_id == update_id)
            or (ts is not None and book.timestamp_ms == ts)
            or (n is not None and index == n)
        ):
            return book.copy()
    raise LookupError(f"update id {update_id} / ts {ts} / message {n} not reached by the recording")


def checksum_books(messages: Iterable[dict[str, Any]], *, verify: bool = True) -> Iterator[tuple[Book, int]]:
    """OKX/Bitget `books`: yield (book, checksum computed) after each message, snapshot included.

    The book is the same object, mutated (copy it to keep it). With `verify`, a message whose
    `checksum` differs from the rebuilt book's raises ChecksumMismatch.
    """
    book: Book | None = None
    texts: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}
    for message in messages:
        data = message["data"][0]
        if message.get("action") == "snapshot":
            book = Book()
            texts = {"bids": {}, "asks": {}}
        elif book is None:
            raise SequenceGap("update before any snapshot")
        else:
            book.applied += 1
        for side in ("bids", "asks"):
            for level in data.get(side, []):
                price, size = Decimal(level[0]), Decimal(level[1])
                target = book.bids if side == "bids" else book.asks
                if size == 0:
                    target.pop(price, None)
                    texts[side].pop(price, None)
                else:
                    target[price] = size
                    texts[side][price] = (level[0], level[1])
        bids = [texts["bids"][p] for p in sorted(texts["bids"], reverse=True)[:25]]
        asks = [texts["asks"][p] for p in sorted(texts["asks"])[:25]]
        computed = crc32_checksum(bids, asks)
        if verify and "checksum" in data and int(data["checksum"]) != computed:
            raise ChecksumMismatch(f"checksum {data['checksum']} != {computed} after {book.applied} updates")
        book.timestamp_ms = int(data["ts"])
        yield book, computed


def checksum_book_at(messages: Iterable[dict[str, Any]], *, ts: int | None = None, n: int | None = None) -> Book:
    """The OKX/Bitget book at a message timestamp, or after `n` messages (1 = the snapshot alone)."""
    for index, (book, _) in enumerate(checksum_books(messages), start=1):
        if (ts is not None and book.timestamp_ms == ts) or (n is not None and index == n):
            return book.copy()
    raise LookupError(f"ts {ts} / message {n} not reached by the recording")

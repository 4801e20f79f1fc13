"""OKX order-book checksums: the book as the exchange says it should be after each message.

OKX sends, with every `books` message, the CRC32 of the top 25 levels of the book it expects the
client to hold: bid price:size, ask price:size interleaved, as the exact strings it sent (a shorter
side simply ends), as a signed 32-bit integer. ccxt (4.5) checks OKX's sequence ids when they are
present but not this checksum, so a lost or corrupted update would leave a silently wrong book.
`ChecksumBook` keeps the levels as the exchange's strings and answers the checksum after each message.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

DEPTH = 25


def crc32_checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], depth: int = DEPTH) -> int:
    """Signed CRC32 of `bidPx:bidSz:askPx:askSz:...` over the top `depth` levels of each side."""
    parts: list[str] = []
    for i in range(depth):
        if i < len(bids):
            parts.extend(bids[i])
        if i < len(asks):
            parts.extend(asks[i])
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class ChecksumBook:
    """One instrument's book as OKX's strings: apply each message's levels, then ask `checksum()`."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}

    def apply(self, data: Mapping[str, Any]) -> None:
        for side, levels in ((self.bids, data.get("bids") or ()), (self.asks, data.get("asks") or ())):
            _apply(side, levels)

    def checksum(self, depth: int = DEPTH) -> int:
        bids = [self.bids[p] for p in heapq.nlargest(depth, self.bids)]
        asks = [self.asks[p] for p in heapq.nsmallest(depth, self.asks)]
        return crc32_checksum(bids, asks, depth)


def _apply(side: dict[Decimal, tuple[str, str]], levels: Iterable[Sequence[Any]]) -> None:
    for level in levels:
        price_text, size_text = str(level[0]), str(level[1])
        try:
            price, size = Decimal(price_text), Decimal(size_text)
        except InvalidOperation:
            continue  # not a level; the checksum will say the book is wrong
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = (price_text, size_text)

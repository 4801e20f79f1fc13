"""Small test helpers shared by the emulator's tests (kept out of fixtures.py, which pytest loads as a plugin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (no sleeping for a fixed time in tests)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def ccxt_levels(book: Any, depth: int = 20) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """ccxt's float levels as Decimals (repr of a float parsed from the wire gives the wire value back)."""
    return (
        [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in book["bids"][:depth]],
        [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in book["asks"][:depth]],
    )


async def watch_through(
    client: Any, symbol: str, limit: int | None, done: Callable[[], bool], timeout: float = 15.0
) -> Any:
    """Watch an order book across dropped sockets until `done()`, then return the book.

    ccxt raises NetworkError when a server close hits a pending watch; when it lands between two
    watches, ccxt silently opens a new connection on the next one. Either way watching again
    resubscribes, so this loop treats both alike.
    """

    async def loop() -> Any:
        while True:
            try:
                book = await client.watch_order_book(symbol, limit)
            except ccxt.NetworkError:
                continue
            if done():
                return book

    return await asyncio.wait_for(loop(), timeout)

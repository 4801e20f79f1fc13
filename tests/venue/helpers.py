"""Small test helpers shared by the emulator's tests (kept out of fixtures.py, which pytest loads as a plugin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any


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

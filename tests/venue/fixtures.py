"""pytest fixtures for the venue emulator (registered by the lead through `pytest_plugins`).

`venue` starts an emulator on a free port with a fast replay, points ccxt at it through
`settings.EXCHANGE_VENUE_URL`, drops the process's cached markets (they belong to the previous
venue) and stops it afterwards. `venue_factory(**options)` does the same with other options
(speed, shift_timestamps, on_end); the last one started is the one settings point at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.venue.server import VenueEmulator

# Fast enough that a recording (~30 s of market time) plays in about a second.
TEST_SPEED = 25.0


@pytest.fixture
def venue_factory(data_dir: Path, settings: Any) -> Iterator[Callable[..., VenueEmulator]]:
    from exchanges.connectivity import forget_markets

    started: list[VenueEmulator] = []

    def start(**options: Any) -> VenueEmulator:
        options.setdefault("speed", TEST_SPEED)
        emulator = VenueEmulator(data_dir, **options).start()
        started.append(emulator)
        settings.EXCHANGE_VENUE_URL = emulator.url
        forget_markets()
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
    forget_markets()


@pytest.fixture
def venue(venue_factory: Callable[..., VenueEmulator]) -> VenueEmulator:
    return venue_factory()


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (no sleeping for a fixed time in tests)."""
    import asyncio
    import time

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

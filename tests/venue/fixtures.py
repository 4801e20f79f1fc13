"""pytest fixtures for the venue emulator (registered by the lead through `pytest_plugins`).

`venue` starts an emulator on a free port with a fast replay, points ccxt at it through
`settings.EXCHANGE_VENUE_URL`, drops the process's cached markets (they belong to the previous
venue) and stops it afterwards. `venue_factory(**options)` does the same with other options
(speed, shift_timestamps, on_end, accounts, funds); the last one started is the one settings point at.
Every emulator trades for the accounts in `tests.venue.trading.TEST_ACCOUNTS` unless given others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

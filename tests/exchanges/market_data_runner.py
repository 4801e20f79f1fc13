"""The market-data process run inside a test against the emulator: a recorder for its events,
a fixture that starts it (and stops it after the test), and whether a stream is live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from arbsite.redis_client import get_async_redis
from exchanges.market_data import MarketData
from exchanges.order_books import StreamState, read_stream_statuses
from exchanges.symbols import Instrument


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == event]


@pytest.fixture
async def run_marketdata() -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[asyncio.Event, asyncio.Task[None], Any]] = []

    async def start(instruments: set[Instrument], **options: Any) -> tuple[MarketData, Recorder]:
        recorder = Recorder()
        redis = get_async_redis()
        options.setdefault("backoff", lambda attempt: 0.05)
        service = MarketData(publisher=recorder.publish, redis=redis, instruments=lambda: set(instruments),
                             heartbeat_seconds=0.1, **options)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(service.run(stop)), redis))
        return service, recorder

    yield start
    for stop, task, redis in running:
        stop.set()
        await asyncio.wait_for(task, 15)
        await redis.aclose()


def is_live(instrument: Instrument) -> bool:
    status = read_stream_statuses().get(instrument.key)
    return status is not None and status.state is StreamState.LIVE

"""Event-driven detection inside the real market-data loop, against the venue emulator.

The pair is Bybit BTCUSDT linear against Binance BTCUSDT spot. The emulator replays
recordings from different days (Bybit 2026-08-09 around 65,100; Binance 2024-08-08 around
61,800), so the books it serves hold a gap of about 5 % between the venues: an artefact of
the recordings, used here only to prove the wiring end to end (stream -> listener ->
shared episode -> `opportunity` event -> record), with real ccxt clients, real markets and
real fees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from arbsite.redis_client import get_async_redis
from exchanges import market_data
from exchanges.market_data import MarketData
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.detection.helpers import RecordingPublisher, eventually, eventually_in_thread, make_pair

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

BYBIT_BTC = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
BINANCE_BTC = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    recorder = RecordingPublisher()
    monkeypatch.setattr("arbsite.events.publish", recorder)
    return recorder


@pytest.fixture
async def fresh_listener(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """The process's listener is made on first use; each test gets a new one on its own loop."""
    from trading import detection

    monkeypatch.setattr(detection, "_LISTENER", None)
    yield
    made = detection._LISTENER
    if made is not None and made.store is not None:
        await made.store.redis.aclose()


async def test_the_stream_drives_detection_and_announces_once(
    venue_factory: Any, publisher: RecordingPublisher, fresh_listener: None
) -> None:
    from trading.detection import on_book
    from trading.opportunity_models import Opportunity

    assert on_book in market_data._LISTENERS  # installed by TradingConfig.ready()
    await asyncio.to_thread(
        make_pair, "bybit_binance_btc", leg1_exchange="bybit", leg1_type="linear", leg2_exchange="binance",
        leg2_type="spot", threshold=Decimal("0.1"), qty=Decimal("0.001"),
    )
    venue_factory(speed=5.0)
    redis = get_async_redis()
    service = MarketData(publisher=lambda event, data: asyncio.sleep(0), redis=redis,
                         instruments=lambda: {BYBIT_BTC, BINANCE_BTC}, heartbeat_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await eventually(lambda: publisher.named("opportunity"), timeout=30)
        [event] = publisher.named("opportunity")
        assert event["pairId"] == "bybit_binance_btc"
        assert event["direction"] == "leg1_sell_leg2_buy"  # sell the dearer Bybit book, buy Binance
        assert event["venue"] == "emulator"
        assert event["netEdgePercent"] >= 0.1

        def recorded() -> bool:
            return Opportunity.objects.filter(pair_key="bybit_binance_btc").exists()

        await eventually_in_thread(recorded)
        from trading.detection import listener

        seen = listener()._evaluated
        await eventually(lambda: listener()._evaluated >= seen + 20, timeout=30)  # more updates arrive ...
        assert len(publisher.named("opportunity")) == 1  # ... still one announcement, one record
        assert await asyncio.to_thread(Opportunity.objects.count) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await redis.aclose()

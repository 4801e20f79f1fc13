"""The book listener of the market-data process: index from the database every few seconds
(never per update), one announcement per episode, shared with the sweep through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbsite.redis_client import get_async_redis, get_redis
from exchanges.order_books import OrderBook, now_ms
from exchanges.symbols import Instrument
from tests.detection.helpers import (
    PERP,
    PERP_FEE,
    SPOT,
    SPOT_FEE,
    RecordingPublisher,
    RecordingRecorder,
    eventually,
    pair_config,
    recorded_book,
    shifted,
)
from trading.detection import BookListener, DedupPolicy, Effects, EmitReason, EpisodeStore, PairConfig, decide


async def fees(instruments: Iterable[Instrument]) -> dict[Instrument, Decimal]:
    known = {SPOT: SPOT_FEE, PERP: PERP_FEE}
    return {i: known[i] for i in instruments if i in known}


class CountingLoader:
    """Stands in for the database read of enabled pairs; counts the reads."""

    def __init__(self, *answers: list[PairConfig]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> list[PairConfig]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = get_async_redis()
    yield client
    await client.aclose()


def fresh(book: OrderBook, factor: str = "1") -> OrderBook:
    return shifted(book, factor, received_ts=now_ms())


def make_listener(redis: Any, loader: CountingLoader, publisher: RecordingPublisher, recorder: RecordingRecorder,
                  **options: Any) -> BookListener:
    return BookListener(
        loader=loader, fee_loader=fees, store=EpisodeStore(redis, DedupPolicy()),
        effects=Effects(publish=publisher, record=recorder), **options,
    )


async def test_it_reads_pairs_once_and_announces_once_over_many_updates(data_dir: Path, redis: Any) -> None:
    spot, perp = recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)
    loader = CountingLoader([pair_config()])
    publisher, recorder = RecordingPublisher(), RecordingRecorder()
    listener = make_listener(redis, loader, publisher, recorder, refresh_seconds=3600)

    for i in range(60):
        await listener(fresh(spot) if i % 2 else fresh(perp, "1.003"))  # derived: perp × 1.003

    assert loader.calls == 1
    [event] = publisher.named("opportunity")
    assert event["pairId"] == "spot_perp_btc" and event["reason"] == EmitReason.APPEARED.value
    [(decision, transition, source)] = recorder.calls
    assert source == "stream" and transition.opened is not None and decision.passing

    await listener(fresh(perp))  # the real perp book: the opportunity is gone
    assert len(recorder.calls) == 2
    ended = recorder.calls[-1][1].ended
    assert ended is not None and ended.id == transition.opened.id
    assert ended.updates >= 58  # the quiet updates were counted, and reported at the end
    assert len(publisher.named("opportunity")) == 1


async def test_the_index_refreshes_in_the_background(data_dir: Path, redis: Any) -> None:
    spot, perp = recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)
    loader = CountingLoader([], [pair_config()])
    publisher, recorder = RecordingPublisher(), RecordingRecorder()
    listener = make_listener(redis, loader, publisher, recorder, refresh_seconds=0)

    await listener(fresh(spot))
    assert listener.index.by_instrument == {}
    await listener(fresh(perp, "1.003"))  # due: a refresh starts; this update is not held up by it

    await eventually(lambda: loader.calls >= 2 and PERP in listener.index.by_instrument)
    assert listener.index.by_instrument[PERP][0].id == "spot_perp_btc"
    assert listener.index.fees == {SPOT: SPOT_FEE, PERP: PERP_FEE}
    await listener(fresh(spot))
    await listener(fresh(perp, "1.003"))
    await eventually(lambda: publisher.named("opportunity"))


async def test_a_pair_dropped_from_the_index_stops_being_decided(data_dir: Path, redis: Any) -> None:
    spot, perp = recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)
    loader = CountingLoader([pair_config()], [])
    listener = make_listener(redis, loader, RecordingPublisher(), RecordingRecorder(), refresh_seconds=3600)
    await listener(fresh(spot))
    assert listener.detect(fresh(perp, "1.003"))
    await listener.refresh()
    assert listener.index.by_instrument == {}
    assert listener.detect(fresh(perp, "1.003")) == []


async def test_it_does_not_reannounce_what_the_sweep_announced(data_dir: Path, redis: Any) -> None:
    spot, perp = recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)
    sweep_store = EpisodeStore(get_redis(), DedupPolicy())
    sweep = sweep_store.apply(decide(pair_config(), fresh(spot), fresh(perp, "1.003"), SPOT_FEE, PERP_FEE))
    assert sweep.emit is EmitReason.APPEARED

    publisher, recorder = RecordingPublisher(), RecordingRecorder()
    listener = make_listener(redis, CountingLoader([pair_config()]), publisher, recorder, refresh_seconds=3600)
    await listener(fresh(spot))
    await listener(fresh(perp, "1.003"))
    assert publisher.named("opportunity") == []
    assert recorder.calls == []
    assert listener.local.states["spot_perp_btc"].id == sweep.opened.id  # type: ignore[union-attr]


async def test_it_catches_up_when_the_sweep_ended_the_episode(data_dir: Path, redis: Any) -> None:
    spot, perp = recorded_book(data_dir, SPOT), recorded_book(data_dir, PERP)
    publisher, recorder = RecordingPublisher(), RecordingRecorder()
    listener = make_listener(redis, CountingLoader([pair_config()]), publisher, recorder, refresh_seconds=3600,
                             sync_ms=0)
    await listener(fresh(spot))
    await listener(fresh(perp, "1.003"))
    assert len(publisher.named("opportunity")) == 1

    # The sweep saw it end (say over REST while this stream lagged) ...
    EpisodeStore(get_redis(), DedupPolicy()).apply(decide(pair_config(), fresh(spot), fresh(perp), SPOT_FEE, PERP_FEE))
    # ... so the next passing update here is a new episode, announced.
    await listener(fresh(perp, "1.003"))
    assert [e["reason"] for e in publisher.named("opportunity")] == ["appeared", "appeared"]


async def test_it_samples_detection_latency(data_dir: Path, redis: Any) -> None:
    from arbsite import metrics

    spot = recorded_book(data_dir, SPOT)
    listener = make_listener(redis, CountingLoader([pair_config()]), RecordingPublisher(), RecordingRecorder(),
                             refresh_seconds=3600)
    for _ in range(40):
        await listener(fresh(spot))
    samples = await eventually(lambda: metrics.samples("detection_latency_ms"))
    assert all(s >= 0 for s in samples)

"""Episodes shared through Redis: two processes never both announce one episode."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from arbsite.redis_client import get_async_redis, get_redis
from exchanges.order_books import now_ms
from tests.detection.helpers import PERP, PERP_FEE, SPOT, SPOT_FEE, pair_config, recorded_book, shifted
from trading.detection import DedupPolicy, EmitReason, Episode, EpisodeStore, decide, episode_key


def passing(data_dir: Path, factor: str = "1.003"):  # type: ignore[no-untyped-def]
    at = now_ms()
    return decide(pair_config(), recorded_book(data_dir, SPOT, received_ts=at),
                  shifted(recorded_book(data_dir, PERP, received_ts=at), factor), SPOT_FEE, PERP_FEE, at_ms=at)


def test_the_second_process_sees_the_first_ones_episode(data_dir: Path) -> None:
    a, b = EpisodeStore(get_redis(), DedupPolicy()), EpisodeStore(get_redis(), DedupPolicy())
    first = a.apply(passing(data_dir))
    second = b.apply(passing(data_dir))
    assert first.emit is EmitReason.APPEARED
    assert second.quiet and second.state is not None and first.state is not None
    assert second.state.id == first.state.id and second.state.updates == 2

    ended = b.apply(passing(data_dir, "1.0"))
    assert ended.ended is not None and ended.ended.id == first.state.id
    assert get_redis().get(episode_key("spot_perp_btc")) is None


async def test_concurrent_appearances_announce_once(data_dir: Path) -> None:
    clients = [get_async_redis() for _ in range(8)]
    try:
        stores = [EpisodeStore(c, DedupPolicy()) for c in clients]
        decision = passing(data_dir)
        results = await asyncio.gather(*(s.aapply(decision) for s in stores))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert [r.emit for r in results].count(EmitReason.APPEARED) == 1
    assert len({r.state.id for r in results if r.state}) == 1
    raw = get_redis().get(episode_key("spot_perp_btc"))
    assert raw is not None
    stored = Episode.from_json(raw)
    assert stored.updates == 8


def test_an_episode_round_trips_through_json() -> None:
    from trading.spreads import Direction

    episode = Episode("abc", "p", Direction.LEG1_SELL_LEG2_BUY, 1, 2, Decimal("0.123456789012345678901"),
                      Decimal("0.2"), Decimal("0.1"), 7)
    assert Episode.from_json(episode.to_json()) == episode


@pytest.mark.django_db
def test_records_are_written_once_per_episode_whatever_the_order(data_dir: Path) -> None:
    from trading.detection import record_transition
    from trading.opportunity_models import Opportunity

    store = EpisodeStore(get_redis(), DedupPolicy())
    opened_decision = passing(data_dir)
    opened = store.apply(opened_decision)
    end_decision = passing(data_dir, "1.0")
    ended = store.apply(end_decision)
    # The end lands first (another process), then the open: one row, left open ...
    record_transition(end_decision, ended, "stream")
    record_transition(opened_decision, opened, "sweep")
    record_transition(opened_decision, opened, "sweep")
    row = Opportunity.objects.get()
    assert row.episode == opened.state.id  # type: ignore[union-attr]
    assert int(row.detected_at.timestamp() * 1000) == opened_decision.ts
    assert row.ended_at is None
    # ... until the sweep finds its episode gone from Redis.
    from trading.detection_tasks import close_orphans

    assert close_orphans(store, {"spot_perp_btc"}) == 1
    row.refresh_from_db()
    assert row.ended_at is not None and row.end_reason == "no longer observed"


@pytest.mark.django_db
def test_an_ended_episode_closes_its_row_at_the_end_decision_time(data_dir: Path) -> None:
    from trading.detection import record_transition
    from trading.opportunity_models import Opportunity

    store = EpisodeStore(get_redis(), DedupPolicy())
    opened_decision = passing(data_dir)
    record_transition(opened_decision, store.apply(opened_decision), "stream")
    end_decision = passing(data_dir, "1.0")
    record_transition(end_decision, store.apply(end_decision), "stream")
    row = Opportunity.objects.get()
    assert row.ended_at is not None
    assert int(row.ended_at.timestamp() * 1000) == end_decision.ts
    assert "below the threshold" in row.end_reason

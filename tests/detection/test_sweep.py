"""`poll_pairs`: cached books when fresh, REST when a leg is stale, one announcement per
episode, records once per episode, auto-execution on announcements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from arbsite.redis_client import get_redis
from exchanges.order_books import OrderBook, now_ms, write_book
from tests.detection.helpers import (
    PERP,
    SPOT,
    RecordingAutoExecution,
    RecordingPublisher,
    aged,
    make_pair,
    recorded_book,
    shifted,
)
from trading.detection import DedupPolicy, Effects, EpisodeStore, episode_key
from trading.detection_tasks import poll_pairs
from trading.opportunity_models import Opportunity
from trading.spreads import Direction

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _binance_fees(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Markets (and so taker fees) parsed by ccxt from the recorded exchangeInfo, no network."""
    from tests.trading_execution.helpers import recorded_markets, seed_markets

    seed_markets(recorded_markets(data_dir))


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    """Wraps `arbsite.events.publish`: the sweep's real wiring, recorded instead of sent."""
    recorder = RecordingPublisher()
    monkeypatch.setattr("arbsite.events.publish", recorder)
    return recorder


def cache(book: OrderBook) -> None:
    write_book(book)


def test_it_announces_a_cached_opportunity_once_and_records_it_once(data_dir: Path, publisher) -> None:
    make_pair()
    # Derived: perp × 1.003 over the recorded spot book, both fresh in the cache.
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))

    first = poll_pairs()
    assert first.passing == 1 and first.emitted == 1 and first.rest_fetched == []
    [event] = publisher.named("opportunity")
    assert event["pairId"] == "spot_perp_btc"
    assert event["direction"] == Direction.LEG1_BUY_LEG2_SELL.value
    assert event["reason"] == "appeared"
    assert event["netEdgePercent"] > 0.05
    assert event["spreadPercent"] > event["netEdgePercent"]
    assert event["buyPrice"] < event["sellPrice"]
    assert set(event) >= {"pairId", "spread", "spreadPercent", "ts"}

    second = poll_pairs()
    assert second.passing == 1 and second.emitted == 0
    assert len(publisher.named("opportunity")) == 1
    row = Opportunity.objects.get()
    assert row.pair_key == "spot_perp_btc" and row.ended_at is None and row.source == "sweep"
    assert row.direction == Direction.LEG1_BUY_LEG2_SELL.value
    assert float(row.net_edge_percent) == pytest.approx(event["netEdgePercent"])


def test_it_ends_the_episode_and_closes_the_record(data_dir: Path, publisher) -> None:
    make_pair()
    spot = recorded_book(data_dir, SPOT)
    cache(spot)
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    poll_pairs()
    opened = Opportunity.objects.get()
    before = timezone.now()

    cache(recorded_book(data_dir, PERP))  # the real perp book: within fees again
    result = poll_pairs()
    assert result.passing == 0
    row = Opportunity.objects.get()
    assert row.pk == opened.pk
    assert row.ended_at is not None and before <= row.ended_at <= timezone.now()
    assert row.updates == 1
    assert "below the threshold" in row.end_reason
    assert get_redis().get(episode_key("spot_perp_btc")) is None

    cache(shifted(recorded_book(data_dir, PERP), "1.003"))  # and back: a new episode, a new row
    poll_pairs()
    assert Opportunity.objects.count() == 2
    assert len(publisher.named("opportunity")) == 2


def test_a_persisting_opportunity_counts_its_updates_and_keeps_the_best_edge(data_dir: Path, publisher) -> None:
    make_pair()
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    poll_pairs()
    cache(shifted(recorded_book(data_dir, PERP), "1.0031"))  # not material
    poll_pairs()
    cache(recorded_book(data_dir, PERP))
    poll_pairs()
    row = Opportunity.objects.get()
    assert row.updates == 2
    assert row.max_net_edge_percent > row.net_edge_percent
    assert row.last_net_edge_percent == row.max_net_edge_percent
    assert len(publisher.named("opportunity")) == 1


def test_auto_execution_is_requested_on_announcements_only(data_dir: Path) -> None:
    make_pair(auto_execute=True)
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    hook = RecordingAutoExecution()
    effects = Effects(publish=RecordingPublisher(), auto_execute=hook)
    poll_pairs(effects=effects)
    poll_pairs(effects=effects)
    assert hook.calls == ["spot_perp_btc"]


def test_the_real_auto_execution_hook_queues_an_auto_execution(data_dir: Path, publisher) -> None:
    from trading.execution_models import Execution

    make_pair(auto_execute=True)
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    poll_pairs()
    execution = Execution.objects.get()
    assert execution.pair_key == "spot_perp_btc" and execution.trigger == "auto"


def test_a_pair_without_auto_execution_is_never_executed(data_dir: Path, publisher) -> None:
    from trading.execution_models import Execution

    make_pair()
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    poll_pairs()
    assert not Execution.objects.exists()


def test_disabling_a_pair_closes_its_open_episode(data_dir: Path, publisher) -> None:
    pair = make_pair()
    cache(recorded_book(data_dir, SPOT))
    cache(shifted(recorded_book(data_dir, PERP), "1.003"))
    poll_pairs()
    pair.enabled = False
    pair.save()
    result = poll_pairs()
    assert result.pairs == 0 and result.closed == 1
    row = Opportunity.objects.get()
    assert row.ended_at is not None and row.end_reason == "pair disabled or deleted"
    assert get_redis().get(episode_key("spot_perp_btc")) is None


def test_the_sweep_does_not_reannounce_what_another_process_announced(data_dir: Path, publisher) -> None:
    """The market-data process and the sweep share episodes through Redis."""
    make_pair()
    spot, perp = recorded_book(data_dir, SPOT), shifted(recorded_book(data_dir, PERP), "1.003")
    cache(spot)
    cache(perp)
    from trading.detection import decide
    from trading.detection_tasks import gather_books, read_cached

    other_process = EpisodeStore(get_redis(), DedupPolicy())
    import asyncio

    books = asyncio.run(gather_books([SPOT, PERP], read_cached([SPOT, PERP]), 10_000))
    from tests.detection.helpers import pair_config

    announced = other_process.apply(decide(pair_config(), books.books[SPOT], books.books[PERP],
                                           books.fees[SPOT], books.fees[PERP]))
    assert announced.emit is not None
    result = poll_pairs()
    assert result.passing == 1 and result.emitted == 0
    assert publisher.named("opportunity") == []


# --- the REST fallback, against the venue emulator ---------------------------------------

@pytest.mark.emulator
def test_a_stale_leg_is_fetched_over_rest(venue: Any, data_dir: Path, publisher) -> None:
    make_pair()
    cache(recorded_book(data_dir, SPOT))
    cache(aged(recorded_book(data_dir, PERP), now_ms() - 60_000))  # its stream stopped a minute ago
    result = poll_pairs()
    assert result.rest_fetched == [PERP.key]
    assert result.errors == {}
    assert result.pairs == 1
    # The fetched book is now in the cache, from REST, and fresh.
    from exchanges.order_books import read_book

    stored = read_book(PERP)
    assert stored is not None and stored.source == "rest" and stored.venue == "emulator"
    assert now_ms() - stored.received_ts < 10_000
    # Real books of the same day: spot and perp within fees, nothing announced.
    assert result.passing == 0 and publisher.named("opportunity") == []


@pytest.mark.emulator
def test_missing_books_are_fetched_and_an_unlisted_leg_says_why(venue: Any, publisher) -> None:
    make_pair()
    make_pair("spot_perp_nope", leg1_symbol="NOPEUSDT", leg2_symbol="NOPEUSDT")
    store = EpisodeStore(get_redis(), DedupPolicy())
    result = poll_pairs(store=store)
    assert sorted(result.rest_fetched) == sorted([SPOT.key, PERP.key])
    assert set(result.errors) == {"binance:spot:NOPEUSDT", "binance:linear:NOPEUSDT"}
    assert "not listed" in result.errors["binance:spot:NOPEUSDT"]


def test_the_task_runs_one_sweep_at_a_time(data_dir: Path, publisher) -> None:
    from arbsite.redis_client import key
    from trading.detection_tasks import poll_pairs_task

    make_pair()
    cache(recorded_book(data_dir, SPOT))
    cache(recorded_book(data_dir, PERP))
    get_redis().set(key("detection", "sweep-lock"), "another-worker", ex=60)
    assert poll_pairs_task() == {"skipped": True}
    get_redis().delete(key("detection", "sweep-lock"))
    done = poll_pairs_task()
    assert done["pairs"] == 1 and done["restFetched"] == []
    assert get_redis().get(key("detection", "sweep-lock")) is None

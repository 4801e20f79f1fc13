"""`arbsite.events`: group names, message building, and publishing that never hurts the producer."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings

from arbsite import events, metrics


class Side(StrEnum):
    BUY = "buy"


def test_it_picks_groups_from_the_data() -> None:
    data = {"exchange": "Binance", "symbol": "btcusdt", "type": "spot", "bid": 1.0, "ask": 2.0, "ts": 1}
    assert events.groups_for("price_update", data) == [
        "exchange.binance",
        "exchange.all",
        "symbol.binance.BTCUSDT",
        "symbol.all",
        "instrument.binance.spot.BTCUSDT",
    ]


def test_order_type_is_not_mistaken_for_a_market_type() -> None:
    data = {"exchange": "bybit", "symbol": "BTCUSDT", "type": "market", "pairId": "p1", "planId": "t1"}
    assert events.groups_for("order_submitted", data) == [
        "exchange.bybit",
        "exchange.all",
        "symbol.bybit.BTCUSDT",
        "symbol.all",
        "pair.p1",
        "pair.all",
        "plan.t1",
        "plan.all",
    ]


def test_alerts_go_to_the_alerts_group_only() -> None:
    assert events.groups_for("engine_alert", {"exchange": "bybit", "pairId": "p1"}) == ["alerts"]


@pytest.mark.parametrize("raw", ["pair with spaces/and:colons", "é" * 10, "x" * 300])
def test_group_names_are_always_valid_channels_names(raw: str) -> None:
    from channels.layers import BaseChannelLayer

    name = events.pair_group(raw)
    assert BaseChannelLayer().require_valid_group_name(name)


def test_long_names_stay_distinct() -> None:
    assert events.pair_group("x" * 200 + "a") != events.pair_group("x" * 200 + "b")


def test_the_message_is_json_ready_and_carries_no_secrets() -> None:
    message, groups = events.build_message(
        "order_submitted",
        {
            "exchange": "binance",
            "orderId": "B456",
            "symbol": "BTCUSDT",
            "side": Side.BUY,
            "qty": Decimal("0.001"),
            "apiKey": "should-never-travel",
        },
    )
    assert message["type"] == events.MESSAGE_TYPE
    assert message["event"] == "order_submitted"
    data = message["data"]
    assert data["qty"] == 0.001 and isinstance(data["qty"], float)
    assert data["side"] == "buy" and type(data["side"]) is str
    assert "apiKey" not in data
    assert isinstance(data["ts"], int)  # filled in when the producer left it out
    assert "exchange.binance" in groups


@pytest.fixture
def unreachable_layer(settings: Any) -> Iterator[None]:
    """A channel layer pointing at a port that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [f"redis://127.0.0.1:{listener.getsockname()[1]}/0"]
    settings.CHANNEL_LAYERS = layers
    settings.WS_PUBLISH_TIMEOUT = 0.2
    yield
    listener.close()


def test_sync_publish_gives_up_on_a_hung_redis_without_raising(unreachable_layer: None) -> None:
    before = events.failure_count()
    assert events.publish("engine_alert", {"severity": "error", "code": "X", "message": "m"}) is False
    assert events.failure_count() == before + 1


async def test_async_publish_gives_up_on_a_hung_redis_without_raising(unreachable_layer: None) -> None:
    before = events.failure_count()
    assert await events.apublish("opportunity", {"pairId": "p1", "spread": 1, "spreadPercent": 0.1}) is False
    assert events.failure_count() == before + 1


async def test_a_refused_connection_is_a_counted_failure(settings: Any) -> None:
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = ["redis://127.0.0.1:1/0"]
    settings.CHANNEL_LAYERS = layers
    before = events.failure_count()
    assert await sync_to_async(events.publish)("opportunity", {"pairId": "p1"}) is False
    assert events.failure_count() == before + 1
    # The shared counter (in our own Redis, not the layer's) follows without blocking the caller.
    deadline = time.monotonic() + 5
    while not await sync_to_async(metrics.counter)("ws_publish_failed"):
        assert time.monotonic() < deadline, "ws_publish_failed never counted"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("event", "data"), [("no_such_event", {}), ("opportunity", ["not", "a", "dict"])])
def test_bad_input_is_logged_and_counted_not_raised(event: Any, data: Any) -> None:
    before = events.failure_count()
    assert events.publish(event, data) is False
    assert events.failure_count() == before + 1

"""TWAP test fixtures: paper venues everywhere, recorded markets and books, a plan factory, an event recorder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from arbsite.redis_client import get_redis, key
from exchanges import connectivity
from exchanges.symbols import Exchange
from tests.conftest import recorded_data_dir
from tests.trading_execution.helpers import (
    BINANCE_SPOT_BTC,
    BYBIT_LINEAR_BTC,
    recorded_markets,
    seed_markets,
    write_recorded_book,
)
from twap import execution, scheduler
from twap.models import Plan, PlanState, Slice, SliceState

_MARKETS: dict[Exchange, Any] = {}

PLAN_BODY: dict[str, Any] = {
    "name": "BTC_TWAP",
    "totalQty": "0.01",
    "sliceQty": "0.001",
    "intervalMs": 30000,
    "legs": [
        {"exchange": "bybit", "symbol": "BTCUSDT", "side": "buy", "type": "market", "marketType": "linear"},
        {"exchange": "binance", "symbol": "BTCUSDT", "side": "sell", "type": "market", "marketType": "spot"},
    ],
}


@pytest.fixture(autouse=True)
def _paper_desk(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No trading keys (paper everywhere), no paper latency, markets from the recordings."""
    for name in ("BINANCE", "BYBIT", "OKX", "BITGET"):
        monkeypatch.delenv(f"{name}_API_KEY", raising=False)
    settings.PAPER_LATENCY_MS = 0
    settings.PAPER_STARTING_FUNDS = {"USDT": "100000", "BTC": "1"}
    path = recorded_data_dir()
    if path is not None:
        if not _MARKETS:
            _MARKETS.update(recorded_markets(path))
        seed_markets(_MARKETS)
    yield
    connectivity.forget_markets()


@pytest.fixture
def books(data_dir: Path) -> Callable[[], None]:
    """Write both legs' recorded books to the cache (fresh receive time); call again to refresh."""

    def write() -> None:
        write_recorded_book(data_dir, BYBIT_LINEAR_BTC)
        write_recorded_book(data_dir, BINANCE_SPOT_BTC)

    write()
    return write


class EventRecorder:
    """Stub for `arbsite.events.publish`: keeps what was published, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> bool:
        self.events.append((event, dict(data)))
        return True

    def named(self, name: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == name]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> EventRecorder:
    recorder = EventRecorder()
    monkeypatch.setattr("arbsite.events.publish", recorder)
    return recorder


def plan_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "BTC_TWAP", "total_qty": Decimal("0.01"), "slice_qty": Decimal("0.001"), "interval_ms": 30000,
        "leg1_exchange": "bybit", "leg1_symbol": "BTCUSDT", "leg1_market_type": "linear", "leg1_side": "buy",
        "leg1_order_type": "market",
        "leg2_exchange": "binance", "leg2_symbol": "BTCUSDT", "leg2_market_type": "spot", "leg2_side": "sell",
        "leg2_order_type": "market",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def make_plan(db: Any) -> Callable[..., Any]:
    from twap import scheduler

    def make(**overrides: Any) -> Any:
        return scheduler.create_plan(plan_fields(**overrides))

    return make


def run_due(factory: Any) -> list[int]:
    """One beat tick with the clock moved to the next due slice, then the worker runs what was claimed."""
    Slice.objects.filter(state=SliceState.PENDING, due_at__isnull=False).update(due_at=timezone.now())
    ids = scheduler.claim_due()
    for slice_id in ids:
        execution.execute_slice(slice_id, venue_factory=factory)
    return ids


def drive(plan: Plan, factory: Any, rounds: int = 40) -> Plan:
    for _ in range(rounds):
        plan.refresh_from_db()
        if plan.state != PlanState.RUNNING:
            return plan
        assert run_due(factory), "a running plan always has a slice due"
    raise AssertionError("plan did not stop running")


def paper_orders(exchange: str) -> dict[str, dict[str, Any]]:
    redis = get_redis()
    out = {}
    for k in redis.scan_iter(match=key("paper", exchange, "orders", "*")):
        raw = redis.get(k)
        assert raw is not None
        data = json.loads(raw)
        out[data["clientOrderId"]] = data
    return out


def venue_filled(exchange: str) -> Decimal:
    return sum((Decimal(o["filled"]) for o in paper_orders(exchange).values()), Decimal(0))



from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges import connectivity
from exchanges.symbols import Exchange
from tests.conftest import recorded_data_dir
from tests.trading_execution.helpers import recorded_markets, seed_markets

_MARKETS: dict[Exchange, Any] = {}


@pytest.fixture(scope="session")
def markets(data_dir: Path) -> dict[Exchange, Any]:
    if not _MARKETS:
        _MARKETS.update(recorded_markets(data_dir))
    return _MARKETS


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


class EventRecorder:
    """Stub for `arbsite.events.publish`: keeps what the engine published, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, dict(data)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == name]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> EventRecorder:
    recorder = EventRecorder()
    monkeypatch.setattr("trading.execution._publish", recorder)
    return recorder


@pytest.fixture
def pair(db: Any) -> Any:
    from trading.models import Pair

    return Pair.objects.create(
        id="bybit_binance_btc", leg1_exchange="bybit", leg1_symbol="BTCUSDT", leg1_type="linear",
        leg2_exchange="binance", leg2_symbol="BTCUSDT", leg2_type="spot", threshold=Decimal("0.1"),
        qty=Decimal("0.01"), total_amount=Decimal("100000"), direction="auto", enabled=True,
    )

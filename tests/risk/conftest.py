"""Risk fixtures: fresh books written to the cache as market data would, a BTC pair, recorded alerts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from exchanges.order_books import OrderBook, now_ms, write_book
from exchanges.symbols import Exchange, MarketType

D = Decimal


def put_book(exchange: str, market_type: str, symbol: str, bid: str, ask: str, *, size: str = "5",
             age_ms: int = 0) -> OrderBook:
    """A two-level book around (bid, ask) in the cache, `age_ms` old."""
    b, a = D(bid), D(ask)
    book = OrderBook(
        exchange=Exchange(exchange), symbol=symbol, type=MarketType(market_type),
        bids=[(b, D(size)), (b - 1, D(size))], asks=[(a, D(size)), (a + 1, D(size))],
        ts=now_ms() - age_ms, received_ts=now_ms() - age_ms,
    )
    write_book(book)
    return book


@pytest.fixture
def books() -> Callable[..., OrderBook]:
    put_book("binance", "spot", "BTCUSDT", "68000", "68001")
    put_book("bybit", "linear", "BTCUSDT", "68010", "68011")
    return put_book


@pytest.fixture
def pair(db: Any) -> Any:
    from trading.models import Pair

    return Pair.objects.create(
        id="bybit_binance_btc", leg1_exchange="bybit", leg1_symbol="BTCUSDT", leg1_type="linear",
        leg2_exchange="binance", leg2_symbol="BTCUSDT", leg2_type="spot", threshold=D("0.1"),
        qty=D("0.01"), total_amount=D("100000"), direction="auto", enabled=True,
    )


class PublishedStub:
    """Stub for `arbsite.events.publish` (named as such): keeps engine alerts in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> bool:
        self.events.append((event, dict(data)))
        return True

    def alerts(self) -> list[dict[str, Any]]:
        from trading.risk.alerts import flush

        flush()
        return [d for e, d in self.events if e == "engine_alert"]


@pytest.fixture(autouse=True)
def published(monkeypatch: pytest.MonkeyPatch, settings: Any) -> PublishedStub:
    stub = PublishedStub()
    monkeypatch.setattr("arbsite.events.publish", stub)
    settings.ALERT_WEBHOOK_URL = ""
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.RISK_REJECTION_ALERT_INTERVAL_SECONDS = 0
    from trading.risk import alerts

    alerts._recent.clear()
    return stub


def intent(**overrides: Any) -> Any:
    """An opening buy of 0.01 BTC on Binance spot at the fixture book, with plenty of balance."""
    from trading.risk import OrderIntent

    values: dict[str, Any] = {
        "exchange": "binance", "symbol": "BTCUSDT", "type": "spot", "side": "buy", "qty": D("0.01"),
        "expected_price": D("68001"), "executable_price": D("68001"), "pair_id": None,
        "balances": {"USDT": D("100000"), "BTC": D("1")}, "fee_rate": D("0.001"),
    }
    values.update(overrides)
    return OrderIntent(**values)

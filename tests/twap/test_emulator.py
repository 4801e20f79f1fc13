"""A full plan against the venue emulator: markets and books come from it over real ccxt clients.

The emulator has no order endpoints yet, so the orders go to the paper venue, which fills
them against the books fetched from the emulator (the same path as publicOnly mode).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from exchanges import prices
from exchanges.order_books import OrderBook
from exchanges.venues import venue_for
from tests.trading_execution.helpers import BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC
from tests.twap.conftest import PLAN_BODY, drive, paper_orders, venue_filled
from twap import scheduler
from twap.models import PlanState

pytestmark = [pytest.mark.emulator, pytest.mark.recorded, pytest.mark.django_db(transaction=True)]


def test_a_full_plan_on_the_emulator(venue: Any, api: Any) -> None:
    fetched = async_to_sync(prices.fetch_books)([BYBIT_LINEAR_BTC, BINANCE_SPOT_BTC])
    assert all(isinstance(book, OrderBook) for book in fetched), fetched
    created = api.post("/api/twap/plans", {**PLAN_BODY, "totalQty": "0.005"}, format="json")
    assert created.status_code == 201, created.json()
    plan_id = created.json()["data"]["planId"]
    assert venue.requests_to("exchangeInfo") and venue.requests_to("instruments-info")  # markets checked there
    assert api.post(f"/api/twap/{plan_id}/control", {"action": "start"}, format="json").json() == {"success": True}
    plan = drive(scheduler.get_plan(plan_id), venue_for)
    assert plan.state == PlanState.COMPLETED
    status = api.get(f"/api/twap/{plan_id}/status").json()["data"]
    assert status["progress"] == {"executed": 0.005, "remaining": 0.0, "slicesDone": 5, "slicesTotal": 5}
    assert [leg["executed"] for leg in status["legs"]] == [0.005, 0.005]
    assert all(leg["avgPrice"] > 0 for leg in status["legs"])
    assert venue_filled("bybit") == venue_filled("binance") == Decimal("0.005")
    assert len(paper_orders("bybit")) == len(paper_orders("binance")) == 5


def test_a_full_plan_with_live_venues_on_the_emulator(venue: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real orders (LiveVenue, signed ccxt requests) to the emulator's matching engine, when it has one."""
    trading = pytest.importorskip("tests.venue.trading", reason="the emulator has no order endpoints yet")
    accounts = getattr(trading, "TEST_ACCOUNTS", {})
    if not {"binance", "bybit"} <= set(accounts):
        pytest.skip("the emulator has no trading accounts for binance and bybit")
    for exchange in ("binance", "bybit"):
        api_key, secret = next(iter(accounts[exchange].items()))
        monkeypatch.setenv(f"{exchange.upper()}_API_KEY", api_key)
        monkeypatch.setenv(f"{exchange.upper()}_API_SECRET", secret)
    fetched = async_to_sync(prices.fetch_books)([BYBIT_LINEAR_BTC, BINANCE_SPOT_BTC])
    assert all(isinstance(book, OrderBook) for book in fetched), fetched
    plan_id = api.post("/api/twap/plans", {**PLAN_BODY, "totalQty": "0.003"}, format="json").json()["data"]["planId"]
    api.post(f"/api/twap/{plan_id}/control", {"action": "start"}, format="json")
    plan = drive(scheduler.get_plan(plan_id), venue_for)
    assert plan.state == PlanState.COMPLETED, plan.state_reason
    legs = plan.executed_by_leg()
    assert (legs[1].executed, legs[2].executed) == (Decimal("0.003"), Decimal("0.003"))
    assert not any(o.paper for s in plan.slices.all() for o in s.orders.all())
    desks = venue.venue.trading
    arrivals = [a.client_id for a in desks["binance"].arrivals + desks["bybit"].arrivals]
    assert sorted(arrivals) == sorted(f"tw{plan.uid}s{n}l{leg}" for n in (1, 2, 3) for leg in (1, 2))

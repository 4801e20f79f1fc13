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

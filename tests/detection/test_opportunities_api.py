"""`GET /api/arbitrage/opportunities` (history) and `GET /api/arbitrage/stats` (per pair)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from trading.opportunity_models import Opportunity

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.detection.urls")]


def row(pair: str, episode: str, edge: str, *, started: timedelta, lasted: timedelta | None,
        best: str | None = None) -> Opportunity:
    detected = timezone.now() - started
    return Opportunity.objects.create(
        episode=episode, pair_key=pair, direction="leg1_buy_leg2_sell", detected_at=detected,
        ended_at=detected + lasted if lasted is not None else None, qty=Decimal("0.01"),
        top_spread=Decimal("190.1"), top_spread_percent=Decimal("0.31"), buy_price=Decimal("61000.5"),
        sell_price=Decimal("61190.6"), net_edge=Decimal("0.9"), net_edge_percent=Decimal(edge),
        max_net_edge_percent=Decimal(best or edge), last_net_edge_percent=Decimal(edge), threshold=Decimal("0.1"),
        updates=3, venue="emulator", source="stream",
    )


@pytest.fixture
def history() -> None:
    row("btc", "e1", "0.20", started=timedelta(minutes=30), lasted=timedelta(seconds=10), best="0.25")
    row("btc", "e2", "0.40", started=timedelta(minutes=20), lasted=timedelta(seconds=20))
    row("eth", "e3", "0.15", started=timedelta(minutes=10), lasted=timedelta(seconds=5))


def test_it_lists_newest_first_with_pages(api: Any, history: None) -> None:
    body = api.get("/api/arbitrage/opportunities?pageSize=2").json()
    assert body["success"] is True
    data = body["data"]
    assert data["total"] == 3 and data["pages"] == 2 and data["page"] == 1
    assert [i["episode"] for i in data["items"]] == ["e3", "e2"]
    item = data["items"][1]
    assert item["pairId"] == "btc" and item["open"] is False
    assert item["netEdgePercent"] == 0.4 and item["buyPrice"] == 61000.5 and item["durationMs"] == 20_000
    assert item["endedTs"] - item["detectedTs"] == 20_000

    second = api.get("/api/arbitrage/opportunities?pageSize=2&page=2").json()["data"]
    assert [i["episode"] for i in second["items"]] == ["e1"]


def test_it_filters_by_pair_and_by_open(api: Any, history: None) -> None:
    row("btc", "e4", "0.30", started=timedelta(seconds=5), lasted=None)
    btc = api.get("/api/arbitrage/opportunities?pair=btc").json()["data"]
    assert [i["episode"] for i in btc["items"]] == ["e4", "e2", "e1"]
    open_now = api.get("/api/arbitrage/opportunities?open=true").json()["data"]
    assert [i["episode"] for i in open_now["items"]] == ["e4"]
    assert open_now["items"][0]["endedTs"] is None


def test_it_refuses_a_bad_page(api: Any) -> None:
    response = api.get("/api/arbitrage/opportunities?page=zero")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_stats_per_pair(api: Any, history: None) -> None:
    body = api.get("/api/arbitrage/stats").json()
    assert body["success"] is True
    btc, eth = body["data"]
    assert btc["pairId"] == "btc" and btc["count"] == 2 and btc["open"] == 0
    assert btc["avgNetEdgePercent"] == pytest.approx(0.30)
    assert btc["maxNetEdgePercent"] == 0.40
    assert btc["totalOpenSeconds"] == pytest.approx(30.0)
    assert eth["count"] == 1 and eth["totalOpenSeconds"] == pytest.approx(5.0)

    only_eth = api.get("/api/arbitrage/stats?pair=eth").json()["data"]
    assert [s["pairId"] for s in only_eth] == ["eth"]


def test_an_open_opportunity_counts_its_time_so_far(api: Any) -> None:
    row("btc", "e9", "0.3", started=timedelta(seconds=60), lasted=None)
    [stats] = api.get("/api/arbitrage/stats").json()["data"]
    assert stats["open"] == 1
    assert 59 <= stats["totalOpenSeconds"] <= 120


def test_anonymous_callers_are_refused(anon: Any) -> None:
    assert anon.get("/api/arbitrage/stats").status_code == 401

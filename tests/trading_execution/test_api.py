"""The execution API: contract shape, error envelope, history pagination, exposure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trading_execution.helpers import (
    BINANCE_LINEAR_BTC,
    BINANCE_SPOT_BTC,
    BYBIT_LINEAR_BTC,
    write_recorded_book,
)
from trading.execution_models import Execution, ExecutionState

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.trading_execution.urls")]


def test_it_executes_a_pair_and_answers_in_the_contract_shape(api: Any, pair: Any, data_dir: Path,
                                                               published: Any) -> None:
    write_recorded_book(data_dir, BYBIT_LINEAR_BTC)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    response = api.post(f"/api/arbitrage/execute/{pair.id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    for name in ("pairId", "leg1", "leg2", "spread", "spreadPercent", "pnl", "ts", "paper", "executionId", "fees"):
        assert name in data
    assert data["pairId"] == pair.id and data["paper"] is True and data["state"] == "completed"
    for leg, exchange in (("leg1", "bybit"), ("leg2", "binance")):
        assert data[leg]["exchange"] == exchange
        assert data[leg]["success"] is True
        assert isinstance(data[leg]["orderId"], str) and data[leg]["orderId"]
        assert isinstance(data[leg]["price"], float) and data[leg]["qty"] == 0.01
    assert isinstance(data["spread"], float) and isinstance(data["pnl"], float) and isinstance(data["ts"], int)
    assert data["spreadPercent"] == pytest.approx(data["spread"] / data["leg2"]["price"] * 100)


def test_a_failed_leg_carries_its_code_and_message(api: Any, pair: Any, data_dir: Path, published: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from exchanges.symbols import Exchange
    from tests.trading_execution.helpers import StubVenue

    def factory(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, reject=exchange is Exchange.BINANCE)  # FailingVenue role for leg 2

    monkeypatch.setattr("trading.execution.venue_for", factory)
    write_recorded_book(data_dir, BYBIT_LINEAR_BTC)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    data = api.post(f"/api/arbitrage/execute/{pair.id}").json()["data"]
    assert data["state"] == "flattened"
    assert data["leg1"]["success"] is True
    assert data["leg2"]["success"] is False and data["leg2"]["code"] == "UPSTREAM_ERROR"
    assert "rejected" in data["leg2"]["message"]
    assert [s["action"] for s in data["legRisk"]][-1] == "flattened"
    assert isinstance(data["pnl"], float)


def test_it_answers_risk_rejected_with_the_reason(api: Any, pair: Any, data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_LINEAR_BTC, as_instrument=BYBIT_LINEAR_BTC)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    response = api.post(f"/api/arbitrage/execute/{pair.id}")
    assert response.status_code == 409
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "RISK_REJECTED"
    assert "below the threshold" in body["error"]["message"]


def test_it_answers_exchange_unavailable_without_a_book(api: Any, pair: Any) -> None:
    response = api.post(f"/api/arbitrage/execute/{pair.id}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "EXCHANGE_UNAVAILABLE"


def test_it_refuses_an_unknown_pair(api: Any) -> None:
    response = api.post("/api/arbitrage/execute/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_it_refuses_a_second_execution_in_flight(api: Any, pair: Any) -> None:
    Execution.objects.create(pair=pair, pair_key=pair.id, state=ExecutionState.RUNNING,
                             leg1_exchange="bybit", leg1_symbol="BTCUSDT", leg1_type="linear",
                             leg2_exchange="binance", leg2_symbol="BTCUSDT", leg2_type="spot")
    response = api.post(f"/api/arbitrage/execute/{pair.id}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"


def test_it_pages_the_execution_history(api: Any, pair: Any) -> None:
    for n in range(5):
        Execution.objects.create(pair=pair, pair_key=pair.id if n < 4 else "other_pair",
                                 state=ExecutionState.REJECTED, error_code="RISK_REJECTED", error_message=f"#{n}",
                                 leg1_exchange="bybit", leg1_symbol="BTCUSDT", leg1_type="linear",
                                 leg2_exchange="binance", leg2_symbol="BTCUSDT", leg2_type="spot")
    first = api.get("/api/arbitrage/executions", {"pair": pair.id, "pageSize": 3}).json()["data"]
    second = api.get("/api/arbitrage/executions", {"pair": pair.id, "pageSize": 3, "page": 2}).json()["data"]
    assert (first["total"], first["pages"], len(first["items"]), len(second["items"])) == (4, 2, 3, 1)
    ids = [i["executionId"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert {i["pairId"] for i in first["items"]} == {pair.id}
    assert first["items"][0]["error"] == {"code": "RISK_REJECTED", "message": "#3"}
    everything = api.get("/api/arbitrage/executions").json()["data"]
    assert everything["total"] == 5
    bad = api.get("/api/arbitrage/executions", {"pageSize": 0})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_it_shows_net_exposure(api: Any, pair: Any, data_dir: Path, published: Any) -> None:
    write_recorded_book(data_dir, BYBIT_LINEAR_BTC)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    assert api.post(f"/api/arbitrage/execute/{pair.id}").status_code == 200
    data = api.get("/api/arbitrage/exposure").json()["data"]
    assert data["oneSided"] == []
    assert data["assets"] == [{"asset": "BTC", "netQty": 0.0, "paper": True}]
    assert sorted((v["exchange"], v["netQty"]) for v in data["venues"]) == [("binance", 0.01), ("bybit", -0.01)]


def test_it_requires_authentication(anon: Any) -> None:
    assert anon.get("/api/arbitrage/executions").status_code in (401, 403)

"""Plans API: the contract's shapes, market validation, control transitions, delete rules."""

from __future__ import annotations

import copy
import gzip
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange, MarketType
from tests.twap.conftest import PLAN_BODY

pytestmark = pytest.mark.recorded


def body(**overrides: Any) -> dict[str, Any]:
    out = copy.deepcopy(PLAN_BODY)
    out.update(overrides)
    return out


def create(api: Any, payload: dict[str, Any]) -> Any:
    return api.post("/api/twap/plans", payload, format="json")


def control(api: Any, plan_id: str, action: str) -> Any:
    return api.post(f"/api/twap/{plan_id}/control", {"action": action}, format="json")


def test_it_creates_plans_with_sequential_ids(api: Any, books: Any) -> None:
    first = create(api, body())
    assert first.status_code == 201, first.json()
    assert first.json() == {"success": True, "data": {"planId": "twap_001"}}
    assert create(api, body(name="second")).json()["data"]["planId"] == "twap_002"


def test_it_lists_and_details_plans(api: Any, books: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    listed = api.get("/api/twap/plans").json()["data"]
    assert [p["planId"] for p in listed] == [plan_id]
    plan = listed[0]
    assert plan["name"] == "BTC_TWAP"
    assert plan["totalQty"] == 0.01 and plan["sliceQty"] == 0.001 and plan["intervalMs"] == 30000
    assert plan["state"] == "draft"
    assert plan["progress"] == {"executed": 0.0, "remaining": 0.01, "slicesDone": 0, "slicesTotal": 10}
    assert [(leg["exchange"], leg["side"], leg["type"], leg["marketType"]) for leg in plan["legs"]] == [
        ("bybit", "buy", "market", "linear"), ("binance", "sell", "market", "spot")]
    detail = api.get(f"/api/twap/plans/{plan_id}").json()["data"]
    assert len(detail["slices"]) == 10
    assert {s["state"] for s in detail["slices"]} == {"pending"}
    assert api.get("/api/twap/plans/twap_999").json()["error"]["code"] == "NOT_FOUND"


def test_the_status_endpoint_has_the_contract_shape(api: Any, books: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    data = api.get(f"/api/twap/{plan_id}/status").json()["data"]
    assert data["planId"] == plan_id
    assert data["progress"] == {"executed": 0.0, "remaining": 0.01, "slicesDone": 0, "slicesTotal": 10}
    assert data["state"] == "draft"
    assert data["lastExecutionTs"] is None
    assert [leg["executed"] for leg in data["legs"]] == [0.0, 0.0]
    assert [leg["avgPrice"] for leg in data["legs"]] == [None, None]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"totalQty": "0.0005"}, "totalQty"),  # below one slice
        ({"intervalMs": 50}, "intervalMs"),
        ({"sliceQty": "0"}, "sliceQty"),
        ({"legs": [PLAN_BODY["legs"][0]]}, "legs"),
        ({"maxSpreadPercent": "0.5", "legs": [PLAN_BODY["legs"][0], {**PLAN_BODY["legs"][1], "side": "buy"}]},
         "maxSpreadPercent"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_it_refuses_bodies_that_cannot_make_a_plan(api: Any, books: Any, overrides: dict[str, Any],
                                                   field: str) -> None:
    response = create(api, body(**overrides))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["fields"]


def test_it_refuses_a_symbol_the_venue_does_not_list(api: Any, books: Any) -> None:
    legs = [PLAN_BODY["legs"][0], {**PLAN_BODY["legs"][1], "symbol": "NOPEUSDT"}]
    response = create(api, body(legs=legs))
    assert response.status_code == 400
    # The base-asset check or the market check names leg 2's symbol.
    assert "symbol" in response.json()["error"]["fields"]["legs"][1]


def test_it_refuses_a_slice_below_a_venues_minimum_amount(api: Any, books: Any) -> None:
    response = create(api, body(sliceQty="0.0005", totalQty="0.005"))  # bybit linear minimum is 0.001
    assert response.status_code == 400
    messages = response.json()["error"]["fields"]["sliceQty"]
    assert any("bybit" in m and "minimum" in m for m in messages)


def test_it_refuses_a_slice_below_a_venues_minimum_notional(api: Any, data_dir: Path, books: Any) -> None:
    # Bybit spot (min 0.000001 BTC, 5 USDT) against Binance spot (min notional 10 USDT): 0.0001 BTC is ~6 USDT.
    with gzip.open(data_dir / "bybit/orderbook/spot_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz", "rt") as fh:
        data = json.loads(fh.readline())["msg"]["data"]
    write_book(OrderBook(Exchange.BYBIT, "BTCUSDT", MarketType.SPOT,
                         [(Decimal(p), Decimal(s)) for p, s in data["b"][:20]],
                         [(Decimal(p), Decimal(s)) for p, s in data["a"][:20]], ts=int(time.time() * 1000)))
    legs = [{**PLAN_BODY["legs"][0], "marketType": "spot"}, PLAN_BODY["legs"][1]]
    response = create(api, body(legs=legs, sliceQty="0.0001", totalQty="0.001"))
    assert response.status_code == 400
    messages = response.json()["error"]["fields"]["sliceQty"]
    assert any("binance" in m and "notional" in m for m in messages)


def test_it_refuses_a_total_off_the_lot_step(api: Any, books: Any) -> None:
    response = create(api, body(totalQty="0.0105"))  # the last slice would be 0.0015: off bybit's 0.001 step
    assert response.status_code == 400
    assert "totalQty" in response.json()["error"]["fields"]


def test_it_accepts_a_remainder_on_the_lot_step(api: Any, books: Any) -> None:
    response = create(api, body(totalQty="0.012", sliceQty="0.005"))
    assert response.status_code == 201
    plan_id = response.json()["data"]["planId"]
    slices = api.get(f"/api/twap/plans/{plan_id}").json()["data"]["slices"]
    assert [s["qty"] for s in slices] == [0.005, 0.007]


def test_control_follows_the_state_machine(api: Any, books: Any, published: Any,
                                           django_capture_on_commit_callbacks: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    with django_capture_on_commit_callbacks(execute=True):
        _walk_the_states(api, plan_id)
    states = [e["state"] for e in published.named("twap_progress")]
    assert states == ["running", "paused", "running", "cancelled"]
    assert all(e["planId"] == plan_id and e["slicesTotal"] == 10 for e in published.named("twap_progress"))


def _walk_the_states(api: Any, plan_id: str) -> None:
    for action in ("pause", "resume"):
        refused = control(api, plan_id, action)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "CONFLICT"
        assert "draft" in refused.json()["error"]["message"]
    assert control(api, plan_id, "start").json() == {"success": True}
    assert api.get(f"/api/twap/{plan_id}/status").json()["data"]["state"] == "running"
    for action in ("start", "resume"):
        assert control(api, plan_id, action).status_code == 409
    assert control(api, plan_id, "pause").json() == {"success": True}
    for action in ("start", "pause"):
        assert control(api, plan_id, action).status_code == 409
    assert control(api, plan_id, "resume").json() == {"success": True}
    assert control(api, plan_id, "cancel").json() == {"success": True}
    for action in ("start", "pause", "resume", "cancel"):
        assert control(api, plan_id, action).status_code == 409
    assert api.get(f"/api/twap/{plan_id}/status").json()["data"]["state"] == "cancelled"


def test_control_refuses_unknown_actions_and_plans(api: Any, books: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    assert control(api, plan_id, "explode").json()["error"]["code"] == "VALIDATION_ERROR"
    assert control(api, "twap_404", "start").json()["error"]["code"] == "NOT_FOUND"


def test_it_deletes_only_plans_that_are_not_running(api: Any, books: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    control(api, plan_id, "start")
    refused = api.delete(f"/api/twap/plans/{plan_id}")
    assert refused.status_code == 409
    assert "running" in refused.json()["error"]["message"]
    control(api, plan_id, "cancel")
    assert api.delete(f"/api/twap/plans/{plan_id}").json() == {"success": True}
    assert api.get(f"/api/twap/plans/{plan_id}").status_code == 404
    draft = create(api, body()).json()["data"]["planId"]
    assert api.delete(f"/api/twap/plans/{draft}").json() == {"success": True}


def test_it_needs_a_login(anon: Any, db: Any) -> None:
    assert anon.get("/api/twap/plans").status_code == 401


def test_the_admin_lists_plans_and_steers_them(api: Any, books: Any, client: Any, django_user_model: Any) -> None:
    plan_id = create(api, body()).json()["data"]["planId"]
    admin = django_user_model.objects.create_superuser(username="ada", password="x" * 12)
    client.force_login(admin)
    assert plan_id.encode() in client.get("/admin/twap/plan/").content
    from twap.models import Plan

    pk = Plan.objects.get(plan_id=plan_id).pk
    assert client.get(f"/admin/twap/plan/{pk}/change/").status_code == 200
    response = client.post("/admin/twap/plan/", {"action": "start_plans", "_selected_action": [pk]}, follow=True)
    assert response.status_code == 200
    assert Plan.objects.get(pk=pk).state == "running"
    assert client.get("/admin/twap/sliceorder/").status_code == 200

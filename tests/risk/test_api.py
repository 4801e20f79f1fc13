"""The risk API: limits (global and per pair, audited), state, alerts; and the admin's audited edits."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tests.risk.conftest import intent
from trading.risk import check_order

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.risk.urls")]


def test_it_shows_the_default_limits(api: Any) -> None:
    body = api.get("/api/risk/limits").json()
    assert body["success"] is True
    limits = body["data"]["global"]
    assert limits["maxOrderNotional"] == 5000.0 and limits["maxDailyLoss"] == 500.0
    assert limits["abnormalMoveWindowSeconds"] == 10 and body["data"]["pairs"] == []


def test_it_updates_global_and_pair_limits_and_audits_each_change(api: Any, pair: Any) -> None:
    from trading.risk_models import LimitChange

    response = api.put("/api/risk/limits", {"global": {"maxOrderNotional": 1000, "maxDailyLoss": "250.5"},
                                            "pairs": {pair.id: {"maxSlippagePercent": 0.05}}}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["global"]["maxOrderNotional"] == 1000.0 and data["global"]["maxDailyLoss"] == 250.5
    [p] = data["pairs"]
    assert p["overrides"] == {"maxSlippagePercent": 0.05}
    assert p["effective"]["maxSlippagePercent"] == 0.05 and p["effective"]["maxOrderNotional"] == 1000.0
    changes = {(c.scope, c.field, c.old_value, c.new_value, c.username, c.source)
               for c in LimitChange.objects.all()}
    assert ("global", "maxOrderNotional", "5000.000000000000", "1000", "olivia", "api") in changes
    assert (f"pair:{pair.id}", "maxSlippagePercent", "", "0.05", "olivia", "api") in changes

    # null on a pair field inherits again; null for the pair drops its overrides.
    api.put("/api/risk/limits", {"pairs": {pair.id: {"maxSlippagePercent": None}}}, format="json")
    assert api.get("/api/risk/limits").json()["data"]["pairs"][0]["overrides"] == {}
    api.put("/api/risk/limits", {"pairs": {pair.id: None}}, format="json")
    assert api.get("/api/risk/limits").json()["data"]["pairs"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"global": {"maxOrderNotional": -1}}, "maxOrderNotional: must not be negative"),
        ({"global": {"maxOrderNotional": None}}, "cannot be empty"),
        ({"global": {"breakerMinSamples": 1.5}}, "whole number"),
        ({"global": {"nope": 1}}, "unknown limit(s): nope"),
        ({"global": {"maxDailyLoss": "NaN"}}, "finite"),
        ({"other": {}}, "body must be"),
    ],
)
def test_it_refuses_bad_limits(api: Any, body: Any, message: str) -> None:
    response = api.put("/api/risk/limits", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR" and message in response.json()["error"]["message"]


def test_an_unknown_pair_is_not_found(api: Any) -> None:
    response = api.put("/api/risk/limits", {"pairs": {"ghost": {"maxOrderNotional": 1}}}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_the_state_shows_pauses_breakers_exposure_and_todays_usage(api: Any, books: Any, pair: Any) -> None:
    from trading.risk.gate import pause

    check_order(intent(pair_id=pair.id))
    pause(f"pair:{pair.id}", "PnL guard: test", check="pnl_window", pair_id=pair.id)
    data = api.get("/api/risk/state").json()["data"]
    assert data["killSwitch"]["engaged"] is False and data["global"]["state"] == "active"
    assert data["states"] == [{**data["states"][0], "scope": "pair", "id": pair.id, "state": "reducing",
                               "reason": "PnL guard: test", "automatic": True}]
    assert data["exposure"]["net"] == [{"asset": "BTC", "qty": 0.0, "pendingLong": 0.01, "pendingShort": 0.0}]
    assert data["today"]["notional"] == 680.01 and data["today"]["orders"] == 1
    assert data["today"]["pairs"] == [{"pairId": pair.id, "notional": 680.01, "realisedPnl": 0.0, "orders": 1,
                                       "rejections": 0}]


def test_an_operator_resumes_a_paused_pair_deliberately(api: Any, pair: Any) -> None:
    from trading.risk.gate import pause
    from trading.risk_models import BreakerState, LimitChange

    pause(f"pair:{pair.id}", "breaker", check="breaker", pair_id=pair.id)
    BreakerState.objects.create(scope=f"pair:{pair.id}", status="open", reason="x")
    response = api.put("/api/risk/state", {"scope": "pair", "id": pair.id, "state": "active",
                                           "reason": "checked the venue"}, format="json")
    assert response.status_code == 200 and response.json()["data"]["states"] == []
    assert BreakerState.objects.get().status == "closed"
    assert LimitChange.objects.filter(scope=f"pair:{pair.id}", field="state", username="olivia").exists()


def test_the_state_refuses_bad_scopes(api: Any) -> None:
    assert api.put("/api/risk/state", {"scope": "moon", "state": "active"}, format="json").status_code == 400
    assert api.put("/api/risk/state", {"scope": "global", "state": "paused"}, format="json").status_code == 400
    r = api.put("/api/risk/state", {"scope": "pair", "id": "ghost", "state": "halted"}, format="json")
    assert r.status_code == 404


def test_kill_switch_needs_a_boolean(api: Any) -> None:
    r = api.post("/api/risk/kill-switch", {"engaged": "yes"}, format="json")
    assert r.status_code == 400 and "engaged" in r.json()["error"]["message"]


def test_alerts_are_paged_newest_first(api: Any) -> None:
    from trading.risk_models import Alert

    for n in range(5):
        Alert.objects.create(severity="warning", code="RISK_REJECTED", message=f"#{n}", risk_check="slippage")
    body = api.get("/api/risk/alerts?page=2&pageSize=2").json()["data"]
    assert [a["message"] for a in body["items"]] == ["#2", "#1"]
    assert (body["total"], body["pages"]) == (5, 3)
    assert body["items"][0]["check"] == "slippage"
    assert api.get("/api/risk/alerts?page=0").status_code == 400


def test_anonymous_callers_are_refused(anon: Any) -> None:
    assert anon.get("/api/risk/state").status_code in (401, 403)


def test_the_admin_audits_limit_edits(client: Any, pair: Any, django_user_model: Any) -> None:
    from trading.risk.gate import global_limits_row
    from trading.risk_models import LimitChange, RiskLimits

    admin = django_user_model.objects.create_superuser("ada", "ada@example.com", "pw")
    client.force_login(admin)
    row = global_limits_row()
    page = client.get(f"/admin/trading/risklimits/{row.pk}/change/")
    assert page.status_code == 200
    form = {k: ("" if v is None else str(v)) for k, v in row.values().items()}
    form.update({"max_daily_loss": "123", "pair": ""})
    response = client.post(f"/admin/trading/risklimits/{row.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    assert RiskLimits.objects.get(pk=row.pk).max_daily_loss == D("123")
    change = LimitChange.objects.get(field="max_daily_loss")
    assert (change.username, change.source, change.new_value) == ("ada", "admin", "123")


def test_the_admin_kill_switch_engages_like_the_api(client: Any, django_user_model: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from trading.risk import trading_state

    monkeypatch.setattr("trading.risk_tasks.enqueue_cancel_open_orders", lambda: None)
    admin = django_user_model.objects.create_superuser("ada", "ada@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/trading/killswitch/add/", {"engaged": "on", "reason": "from admin"})
    assert response.status_code == 302
    assert trading_state().state == "halted" and trading_state().reason == "from admin"

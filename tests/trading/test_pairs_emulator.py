"""Pairs API against the venue emulator: real Binance/Bybit markets and books, recorded."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

# The emulator fixtures, until the lead registers tests.venue.fixtures in pytest_plugins.
from tests.venue.fixtures import venue, venue_factory  # noqa: F401
from trading.models import Pair

pytestmark = [pytest.mark.emulator, pytest.mark.usefixtures("venue")]

URL = "/api/monitoring/pairs"
BODY: dict[str, Any] = {
    "leg1": {"exchange": "bybit", "symbol": "BTCUSDT", "type": "linear"},
    "leg2": {"exchange": "binance", "symbol": "BTCUSDT", "type": "spot"},
    "threshold": 0.1,
    "qty": 0.001,
    "totalAmount": 200,
    "direction": "auto",
    "enabled": True,
}


def post(api, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return api.post(URL, data=json.dumps(body), content_type="application/json")


def test_it_creates_a_pair_checked_against_real_markets(api) -> None:
    response = post(api, BODY)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["success"] is True
    assert body["data"]["id"] == "bybit_binance_btc"
    pair = Pair.objects.get()
    assert pair.qty == Decimal("0.001") and pair.threshold == Decimal("0.1")
    assert (pair.leg1_exchange, pair.leg1_symbol, pair.leg1_type) == ("bybit", "BTCUSDT", "linear")

    again = post(api, BODY)
    assert again.status_code == 201
    assert again.json()["data"]["id"] == "bybit_binance_btc_2"


def test_it_accepts_an_explicit_id_once(api) -> None:
    assert post(api, {**BODY, "id": "my_btc"}).json()["data"]["id"] == "my_btc"
    response = post(api, {**BODY, "id": "my_btc"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"


def test_it_refuses_a_symbol_the_exchange_does_not_list(api) -> None:
    response = post(
        api,
        {
            **BODY,
            "leg1": {"exchange": "bybit", "symbol": "BTCEUR", "type": "linear"},
            "leg2": {"exchange": "binance", "symbol": "BTCEUR", "type": "spot"},
        },
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "is not listed on bybit" in fields["leg1"]["symbol"][0]
    assert "is not listed on binance" in fields["leg2"]["symbol"][0]


def test_it_refuses_a_qty_off_the_lot_step(api) -> None:
    response = post(api, {**BODY, "qty": "0.0015"})
    assert response.status_code == 400
    [message] = response.json()["error"]["fields"]["qty"]
    assert message.startswith("leg1 (bybit BTCUSDT linear): 0.0015 is not a multiple of the lot step")
    assert "the exchange would trade 0.001" in message


def test_it_refuses_a_qty_below_the_minimum(api) -> None:
    response = post(api, {**BODY, "qty": "0.0001"})
    assert response.status_code == 400
    messages = response.json()["error"]["fields"]["qty"]
    assert any("below the minimum order size 0.001" in m for m in messages), messages


def test_it_refuses_a_total_amount_below_one_execution(api) -> None:
    response = post(api, {**BODY, "qty": 0.01, "totalAmount": 100})
    assert response.status_code == 400, response.json()
    [message] = response.json()["error"]["fields"]["totalAmount"]
    assert "below one execution's notional" in message


def test_it_rechecks_the_markets_when_the_qty_changes(api) -> None:
    pair_id = post(api, BODY).json()["data"]["id"]
    response = api.put(f"{URL}/{pair_id}", data=json.dumps({**BODY, "qty": "0.0015"}), content_type="application/json")
    assert response.status_code == 400
    ok = api.put(f"{URL}/{pair_id}", data=json.dumps({**BODY, "qty": "0.002"}), content_type="application/json")
    assert ok.status_code == 200, ok.json()
    assert ok.json()["data"]["qty"] == 0.002


def test_it_saves_a_checked_pair_from_the_admin(db) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser(username="ada", password="correct horse battery"))
    form = {
        "id": "",
        "enabled": "on",
        "direction": "auto",
        "leg1_exchange": "bybit",
        "leg1_symbol": "btc-usdt",
        "leg1_type": "linear",
        "leg2_exchange": "binance",
        "leg2_symbol": "BTCUSDT",
        "leg2_type": "spot",
        "threshold": "0.1",
        "qty": "0.001",
        "total_amount": "200",
    }
    response = client.post("/admin/trading/pair/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    pair = Pair.objects.get()
    assert (pair.id, pair.leg1_symbol) == ("bybit_binance_btc", "BTCUSDT")
    bad = client.post("/admin/trading/pair/add/", {**form, "qty": "0.0015"})
    assert "not a multiple of the lot step" in str(bad.context["adminform"].form.errors["qty"])

"""Pairs API: the contract's shape, strict validation, and the exchange-unavailable rule.

Happy paths that need an exchange's markets run against the venue emulator
(`tests/trading/test_pairs_emulator.py`); here nothing reaches an exchange except the
deliberately unreachable one.
"""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from typing import Any

import pytest

from exchanges.connectivity import forget_markets
from trading.models import Pair

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


def post(api, body: dict[str, Any], url: str = URL):  # type: ignore[no-untyped-def]
    return api.post(url, data=json.dumps(body), content_type="application/json")


def put(api, pair_id: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return api.put(f"{URL}/{pair_id}", data=json.dumps(body), content_type="application/json")


def make_pair(**overrides: Any) -> Pair:
    fields: dict[str, Any] = {
        "id": "bybit_binance_btc",
        "leg1_exchange": "bybit",
        "leg1_symbol": "BTCUSDT",
        "leg1_type": "linear",
        "leg2_exchange": "binance",
        "leg2_symbol": "BTCUSDT",
        "leg2_type": "spot",
        "threshold": Decimal("0.1"),
        "qty": Decimal("0.001"),
        "total_amount": Decimal("200"),
    }
    fields.update(overrides)
    return Pair.objects.create(**fields)


@pytest.fixture
def closed_port_venue(settings):  # type: ignore[no-untyped-def]
    """EXCHANGE_VENUE_URL pointing at a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EXCHANGE_VENUE_URL = f"http://127.0.0.1:{port}"
    settings.EXCHANGE_TIMEOUT_MS = 2000
    forget_markets()
    yield
    forget_markets()


def fields_of(response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR", body
    return body["error"]["fields"]


# --------------------------------------------------------------------------- reading


def test_it_lists_pairs_in_the_contract_shape(api) -> None:
    make_pair()
    response = api.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    [pair] = body["data"]
    assert {k: pair[k] for k in ("id", "leg1", "leg2", "threshold", "qty", "totalAmount", "direction", "enabled")} == {
        "id": "bybit_binance_btc",
        "leg1": {"exchange": "bybit", "symbol": "BTCUSDT", "type": "linear"},
        "leg2": {"exchange": "binance", "symbol": "BTCUSDT", "type": "spot"},
        "threshold": 0.1,
        "qty": 0.001,
        "totalAmount": 200,
        "direction": "auto",
        "enabled": True,
    }
    assert pair["autoExecute"] is False


def test_it_gets_one_pair_with_or_without_a_trailing_slash(api) -> None:
    make_pair()
    for url in (f"{URL}/bybit_binance_btc", f"{URL}/bybit_binance_btc/", f"{URL}/"):
        response = api.get(url)
        assert response.status_code == 200, url
    assert api.get(f"{URL}/bybit_binance_btc").json()["data"]["id"] == "bybit_binance_btc"


def test_it_reports_an_unknown_pair_as_not_found(api) -> None:
    for response in (api.get(f"{URL}/nope"), api.delete(f"{URL}/nope"), put(api, "nope", BODY)):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


def test_it_requires_authentication(anon, db) -> None:
    response = anon.get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["success"] is False


# --------------------------------------------------------------------------- writing without the exchange


def test_it_deletes_a_pair(api) -> None:
    make_pair()
    response = api.delete(f"{URL}/bybit_binance_btc")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert not Pair.objects.exists()


def test_it_toggles_a_pair_without_asking_the_exchange(api, closed_port_venue) -> None:
    make_pair()
    body = {**BODY, "enabled": False, "threshold": "0.25", "direction": "leg1_sell_leg2_buy", "autoExecute": True}
    response = put(api, "bybit_binance_btc", body)
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["enabled"] is False and data["autoExecute"] is True
    assert data["threshold"] == 0.25 and data["direction"] == "leg1_sell_leg2_buy"
    pair = Pair.objects.get()
    assert pair.threshold == Decimal("0.25") and not pair.enabled and pair.auto_execute


def test_it_refuses_to_rename_a_pair_through_put(api) -> None:
    make_pair()
    response = put(api, "bybit_binance_btc", {**BODY, "id": "other"})
    assert fields_of(response) == {"id": ["cannot be changed (it is the pair's key)"]}


def test_it_fails_clearly_when_the_exchange_cannot_be_reached(api, closed_port_venue) -> None:
    response = post(api, BODY)
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "EXCHANGE_UNAVAILABLE"
    assert "cannot be reached" in body["error"]["message"]
    assert not Pair.objects.exists()


def test_it_does_not_store_a_changed_leg_it_could_not_check(api, closed_port_venue) -> None:
    make_pair()
    response = put(api, "bybit_binance_btc", {**BODY, "qty": 0.002})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "EXCHANGE_UNAVAILABLE"
    assert Pair.objects.get().qty == Decimal("0.001")


# --------------------------------------------------------------------------- validation (before any exchange call)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"treshold": 0.1}, {"treshold": ["unknown field"]}),
        ({"leg1": {**BODY["leg1"], "venue": "x"}}, {"leg1": {"venue": ["unknown field"]}}),
        ({"leg1": {**BODY["leg1"], "exchange": "kraken"}}, {"leg1": {"exchange": ['"kraken" is not a valid choice.']}}),
        ({"leg2": {**BODY["leg2"], "type": "inverse"}}, {"leg2": {"type": ['"inverse" is not a valid choice.']}}),
        ({"leg2": {**BODY["leg2"], "symbol": "BTC$"}}, {"leg2": {"symbol": ["'BTC$' is not a symbol"]}}),
        ({"leg1": {**BODY["leg2"]}}, {"leg2": ["must differ from leg1 (same exchange, symbol and type)"]}),
        ({"threshold": 0}, {"threshold": ["must be greater than 0 and at most 50 (a percent: 0.1 means 0.1 %)"]}),
        ({"threshold": 75}, {"threshold": ["must be greater than 0 and at most 50 (a percent: 0.1 means 0.1 %)"]}),
        ({"qty": -1}, {"qty": ["must be greater than 0"]}),
        ({"qty": "abc"}, {"qty": ["A valid number is required."]}),
        ({"totalAmount": 0}, {"totalAmount": ["must be greater than 0"]}),
        ({"direction": "sideways"}, {"direction": ['"sideways" is not a valid choice.']}),
        ({"id": "Bad Id!"}, {"id": ["This value does not match the required pattern."]}),
    ],
)
def test_it_rejects_bad_bodies_field_by_field(api, closed_port_venue, change, expected) -> None:
    response = post(api, {**BODY, **change})
    assert response.status_code == 400
    assert fields_of(response) == expected


def test_it_names_every_missing_field(api) -> None:
    response = post(api, {})
    assert set(fields_of(response)) == {"leg1", "leg2", "threshold", "qty", "totalAmount"}


def test_it_refuses_legs_on_different_assets(api) -> None:
    response = post(api, {**BODY, "leg2": {"exchange": "binance", "symbol": "ETHUSDT", "type": "spot"}})
    assert fields_of(response) == {
        "leg2": {"symbol": ["trades ETH, leg1 trades BTC: both legs must trade the same asset"]}
    }


def test_it_refuses_nan(api) -> None:
    response = api.post(URL, data='{"qty": NaN}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_it_refuses_a_non_object_body(api) -> None:
    response = api.post(URL, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


# --------------------------------------------------------------------------- ids


def test_it_generates_ids_from_the_legs_with_a_suffix_on_collision(db) -> None:
    from trading.models import suggest_pair_id, unique_pair_id

    first = Pair(
        leg1_exchange="bybit",
        leg1_symbol="BTCUSDT",
        leg1_type="linear",
        leg2_exchange="binance",
        leg2_symbol="BTCUSDT",
        leg2_type="spot",
        threshold=Decimal("0.1"),
        qty=Decimal("0.001"),
        total_amount=Decimal("200"),
    )
    first.save()
    assert first.id == "bybit_binance_btc"
    assert unique_pair_id("bybit_binance_btc") == "bybit_binance_btc_2"
    make_pair(id="bybit_binance_btc_2", qty=Decimal("0.002"))
    assert unique_pair_id("bybit_binance_btc") == "bybit_binance_btc_3"
    assert suggest_pair_id(first.leg2, first.leg1) == "binance_bybit_btc"
    same_exchange = Pair(
        leg1_exchange="binance",
        leg1_symbol="ETHUSDT",
        leg1_type="spot",
        leg2_exchange="binance",
        leg2_symbol="ETHUSDT",
        leg2_type="linear",
    )
    assert suggest_pair_id(same_exchange.leg1, same_exchange.leg2) == "binance_spot_linear_eth"


def test_it_mirrors_the_exchange_vocabulary() -> None:
    from exchanges.symbols import Exchange, MarketType
    from trading.models import DirectionChoice, ExchangeChoice, MarketTypeChoice
    from trading.spreads import Direction

    assert set(ExchangeChoice.values) == {e.value for e in Exchange}
    assert set(MarketTypeChoice.values) == {t.value for t in MarketType}
    assert set(DirectionChoice.values) == {d.value for d in Direction}

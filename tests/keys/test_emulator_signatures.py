"""Wrong keys against the venue emulator, which checks signatures the way the exchanges do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.venue.trading import TEST_ACCOUNTS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_a_wrong_secret_gets_authentication_failed(api: Any, venue: Any, exchange: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    key, _secret = next(iter(TEST_ACCOUNTS[exchange].items()))
    monkeypatch.setenv(f"{exchange.upper()}_API_KEY", key)
    monkeypatch.setenv(f"{exchange.upper()}_API_SECRET", "not-the-secret-0000")
    response = api.post("/api/settings/api/test", {"exchange": exchange}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "AUTHENTICATION_FAILED"
    assert "not-the-secret-0000" not in response.content.decode()


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_the_right_keys_connect(api: Any, venue: Any, exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = next(iter(TEST_ACCOUNTS[exchange].items()))
    monkeypatch.setenv(f"{exchange.upper()}_API_KEY", key)
    monkeypatch.setenv(f"{exchange.upper()}_API_SECRET", secret)
    response = api.post("/api/settings/api/test", {"exchange": exchange}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["connected"] is True
    assert secret not in response.content.decode()

"""Settings API for trading keys, key tests against a signature-checking MOCK Binance, accounts."""

from __future__ import annotations

from typing import Any

import pytest

from exchanges import credentials
from exchanges.models import AuditAction, AuditRecord, ExchangeCredential
from tests.keys.conftest import BinanceSignatureStub

pytestmark = pytest.mark.django_db


def put_keys(api: Any, body: dict[str, Any]) -> Any:
    return api.put("/api/settings/api", body, format="json")


def test_it_requires_authentication(anon: Any) -> None:
    for method, path in [("get", "/api/settings/api"), ("put", "/api/settings/api"),
                         ("post", "/api/settings/api/test"), ("get", "/api/account/binance"),
                         ("get", "/api/auth/tokens"), ("delete", "/api/settings/api/binance")]:
        response = getattr(anon, method)(path)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"


def test_it_reports_no_keys_as_public_only(api: Any) -> None:
    data = api.get("/api/settings/api").json()["data"]
    assert set(data) == {"binance", "bybit", "okx", "bitget"}
    for name, status in data.items():
        assert status["connected"] is False and status["publicOnly"] is True, name
        assert status["source"] is None
    assert data["okx"]["needsPassphrase"] is True and data["binance"]["needsPassphrase"] is False


def test_it_saves_keys_encrypted_and_says_only_connected(api: Any, encryption_key: str) -> None:
    response = put_keys(api, {"binance": {"apiKey": "bn-key-0123456789abcdef", "secret": "bn-secret-value"},
                              "okx": {"apiKey": "okx-key-0123456789", "secret": "okx-secret", "passphrase": "okx-pp"}})
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    status = api.get("/api/settings/api")
    data = status.json()["data"]
    assert data["binance"] == {**data["binance"], "connected": True, "publicOnly": False, "source": "stored"}
    assert data["okx"]["connected"] is True and data["bybit"]["connected"] is False
    for secret in ("bn-key-0123456789abcdef", "bn-secret-value", "okx-key-0123456789", "okx-secret", "okx-pp"):
        assert secret not in status.content.decode()
    assert ExchangeCredential.objects.count() == 2
    audits = AuditRecord.objects.filter(action=AuditAction.API_KEYS_SAVED)
    assert {a.exchange for a in audits} == {"binance", "okx"}
    assert all(a.username == "olivia" for a in audits)


def test_it_refuses_to_store_keys_without_the_encryption_key(api: Any, no_encryption_key: None) -> None:
    response = put_keys(api, {"binance": {"apiKey": "bn-key-0123456789abcdef", "secret": "bn-secret-value"}})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "ENCRYPTION_KEY_MISSING"
    assert "CREDENTIALS_ENCRYPTION_KEY" in error["message"] and "BINANCE_API_KEY" not in error["message"]
    assert not ExchangeCredential.objects.exists()
    assert not AuditRecord.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"okx": {"apiKey": "okx-key-0123456789", "secret": "okx-secret-value"}}, "passphrase"),
    ({"binance": {"apiKey": "", "secret": "bn-secret-value"}}, "apiKey"),
    ({"binance": {"apiKey": "bn-key-0123456789", "secret": "bn-secret-value", "apiSecret": "x"}}, "apiSecret"),
])
def test_it_rejects_bad_bodies_without_echoing_them(api: Any, encryption_key: str, body: dict[str, Any],
                                                    field: str) -> None:
    response = put_keys(api, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    exchange = next(iter(body))
    assert field in error["fields"][exchange]
    assert "secret-value" not in response.content.decode()
    assert not ExchangeCredential.objects.exists()


def test_it_rejects_an_unknown_exchange(api: Any, encryption_key: str) -> None:
    response = put_keys(api, {"kraken": {"apiKey": "k", "secret": "s"}})
    assert response.status_code == 400
    assert "kraken" in response.json()["error"]["message"]


def test_it_deletes_stored_keys(api: Any, encryption_key: str) -> None:
    put_keys(api, {"bybit": {"apiKey": "by-key-0123456789abcdef", "secret": "by-secret-value"}})
    assert api.delete("/api/settings/api/bybit").json() == {"success": True}
    assert not ExchangeCredential.objects.exists()
    assert api.get("/api/settings/api").json()["data"]["bybit"]["connected"] is False
    again = api.delete("/api/settings/api/bybit")
    assert again.status_code == 404 and again.json()["error"]["code"] == "NOT_FOUND"
    assert AuditRecord.objects.filter(action=AuditAction.API_KEYS_DELETED, exchange="bybit").count() == 1


def test_deleting_env_keys_says_where_they_come_from(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "env-key-value")
    monkeypatch.setenv("BINANCE_API_SECRET", "env-secret-value")
    response = api.delete("/api/settings/api/binance")
    assert response.status_code == 404
    assert "BINANCE_API_KEY" in response.json()["error"]["message"]
    assert "env-key-value" not in response.content.decode()


# -- testing keys against the MOCK Binance ---------------------------------------------


def test_it_tests_good_keys(api: Any, binance_stub: BinanceSignatureStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", binance_stub.api_key)
    monkeypatch.setenv("BINANCE_API_SECRET", binance_stub.secret)
    response = api.post("/api/settings/api/test", {"exchange": "binance"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["connected"] is True
    assert data["permissions"]["withdrawals"] is False and data["permissions"]["trading"] is True
    assert not any("WITHDRAWALS" in w for w in data["warnings"])
    assert binance_stub.signed_requests >= 2 and binance_stub.rejected == 0
    assert binance_stub.api_key not in response.content.decode()
    last = api.get("/api/settings/api").json()["data"]["binance"]["lastTest"]
    assert last["connected"] is True


def test_it_warns_loudly_when_withdrawals_are_enabled(api: Any, binance_stub: BinanceSignatureStub,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    binance_stub.withdrawals = True
    monkeypatch.setenv("BINANCE_API_KEY", binance_stub.api_key)
    monkeypatch.setenv("BINANCE_API_SECRET", binance_stub.secret)
    data = api.post("/api/settings/api/test", {"exchange": "binance"}, format="json").json()["data"]
    assert data["permissions"]["withdrawals"] is True
    assert any("WITHDRAWALS ARE ENABLED" in w for w in data["warnings"])
    assert any(getattr(r, "event", None) == "api_key_withdrawals_enabled" for r in caplog.records)


def test_wrong_keys_get_an_authentication_code(api: Any, binance_stub: BinanceSignatureStub,
                                               encryption_key: str) -> None:
    put_keys(api, {"binance": {"apiKey": binance_stub.api_key, "secret": "wrong-secret-0000000000"}})
    response = api.post("/api/settings/api/test", {"exchange": "binance"}, format="json")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "AUTHENTICATION_FAILED"
    assert "binance" in error["message"]
    assert binance_stub.rejected >= 1
    body = response.content.decode()
    assert "wrong-secret-0000000000" not in body and binance_stub.api_key not in body
    last = api.get("/api/settings/api").json()["data"]["binance"]["lastTest"]
    assert last["connected"] is False and last["error"]["code"] == "AUTHENTICATION_FAILED"


def test_a_wrong_api_key_is_refused_too(api: Any, binance_stub: BinanceSignatureStub,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "someone-elses-key-000000")
    monkeypatch.setenv("BINANCE_API_SECRET", binance_stub.secret)
    response = api.post("/api/settings/api/test", {"exchange": "binance"}, format="json")
    assert response.json()["error"]["code"] == "AUTHENTICATION_FAILED"


def test_testing_without_keys_says_public_only(api: Any) -> None:
    response = api.post("/api/settings/api/test", {"exchange": "bybit"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "PUBLIC_ONLY"
    assert "BYBIT_API_KEY" in response.json()["error"]["message"]


def test_testing_every_exchange(api: Any, binance_stub: BinanceSignatureStub,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", binance_stub.api_key)
    monkeypatch.setenv("BINANCE_API_SECRET", binance_stub.secret)
    data = api.post("/api/settings/api/test", {}, format="json").json()["data"]
    assert data["connected"] is True
    assert data["exchanges"]["binance"]["connected"] is True
    assert data["exchanges"]["bybit"] == {"exchange": "bybit", "connected": False, "publicOnly": True}


# -- accounts and publicOnly --------------------------------------------------------------


def test_the_paper_account_is_clearly_marked(api: Any, settings: Any) -> None:
    settings.PAPER_STARTING_FUNDS = {"USDT": "5000", "BTC": "0.5"}
    response = api.get("/api/account/bybit")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["paper"] is True and data["publicOnly"] is True and data["mode"] == "paper"
    assert "Paper account" in data["note"]
    assert {"asset": "USDT", "free": 5000.0, "used": 0.0, "total": 5000.0} in data["balances"]
    assert data["positions"] == []


def test_the_live_account_with_keys(api: Any, binance_stub: BinanceSignatureStub,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", binance_stub.api_key)
    monkeypatch.setenv("BINANCE_API_SECRET", binance_stub.secret)
    response = api.get("/api/account/binance")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["paper"] is False and data["mode"] == "live" and data["venue"] == "emulator"
    assert {"asset": "USDT", "free": 1000.5, "used": 20.0, "total": 1020.5} in data["balances"]
    assert all(b["asset"] != "ETH" for b in data["balances"])  # empty balances are left out
    assert data["positions"] == [] and data["positionsError"] is None


def test_the_account_maps_refused_keys_to_a_code(api: Any, binance_stub: BinanceSignatureStub,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", binance_stub.api_key)
    monkeypatch.setenv("BINANCE_API_SECRET", "not-the-secret-000000")
    response = api.get("/api/account/binance")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "AUTHENTICATION_FAILED"
    assert "not-the-secret-000000" not in response.content.decode()


def test_an_unknown_exchange_account_is_not_found(api: Any) -> None:
    response = api.get("/api/account/kraken")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_exchanges_report_public_only_per_exchange(api: Any, encryption_key: str) -> None:
    before = {e["name"]: e["publicOnly"] for e in api.get("/api/exchanges").json()["data"]}
    assert before == {"binance": True, "bybit": True, "okx": True, "bitget": True}
    credentials.save_credentials("bybit", "by-key-0123456789abcdef", "by-secret-value")
    after = {e["name"]: e["publicOnly"] for e in api.get("/api/exchanges").json()["data"]}
    assert after == {"binance": True, "bybit": False, "okx": True, "bitget": True}


def test_without_keys_the_venue_is_paper() -> None:
    from exchanges.venues import is_paper

    assert all(is_paper(name) for name in ("binance", "bybit", "okx", "bitget"))

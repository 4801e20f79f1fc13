"""Where keys come from and how they are kept: env first, AES-GCM at rest, refusal without a key."""

from __future__ import annotations

from typing import Any

import pytest

from arbsite.errors import ApiError
from exchanges import credentials
from exchanges.models import ExchangeCredential
from exchanges.status import has_trading_keys as status_has_keys
from tests.keys.conftest import new_encryption_key

pytestmark = pytest.mark.django_db


def test_it_round_trips_a_secret_through_encryption(encryption_key: str) -> None:
    token = credentials.encrypt("s3cret-value", "binance", "secret")
    assert "s3cret-value" not in token
    assert token.startswith("v1:")
    assert credentials.decrypt(token, "binance", "secret") == "s3cret-value"
    # A fresh nonce every time: the same secret never gives the same ciphertext.
    assert credentials.encrypt("s3cret-value", "binance", "secret") != token


def test_it_binds_a_ciphertext_to_its_exchange_and_field(encryption_key: str) -> None:
    token = credentials.encrypt("s3cret-value", "binance", "secret")
    with pytest.raises(credentials.CredentialsUnreadable):
        credentials.decrypt(token, "bybit", "secret")
    with pytest.raises(credentials.CredentialsUnreadable):
        credentials.decrypt(token, "binance", "apiKey")


def test_it_detects_tampering(encryption_key: str) -> None:
    token = credentials.encrypt("s3cret-value", "binance", "secret")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(credentials.CredentialsUnreadable):
        credentials.decrypt(tampered, "binance", "secret")


def test_it_decrypts_with_an_older_key_after_rotation(settings: Any) -> None:
    old = new_encryption_key()
    settings.CREDENTIALS_ENCRYPTION_KEY = old
    token = credentials.encrypt("s3cret-value", "okx", "password")
    settings.CREDENTIALS_ENCRYPTION_KEY = f"{new_encryption_key()},{old}"
    assert credentials.decrypt(token, "okx", "password") == "s3cret-value"


def test_it_refuses_to_store_without_an_encryption_key(no_encryption_key: None) -> None:
    with pytest.raises(credentials.EncryptionKeyMissing) as raised:
        credentials.save_credentials("binance", "a-key-0123456789abcdef", "a-secret")
    assert raised.value.error_code == "ENCRYPTION_KEY_MISSING"
    assert "CREDENTIALS_ENCRYPTION_KEY" in str(raised.value.detail)
    assert not ExchangeCredential.objects.exists()


def test_it_explains_a_malformed_encryption_key(settings: Any) -> None:
    settings.CREDENTIALS_ENCRYPTION_KEY = "too-short"
    with pytest.raises(credentials.EncryptionKeyMissing) as raised:
        credentials.save_credentials("binance", "a-key-0123456789abcdef", "a-secret")
    assert "32 bytes" in str(raised.value.detail) or "base64" in str(raised.value.detail)


def test_it_stores_only_ciphertext(encryption_key: str) -> None:
    credentials.save_credentials("okx", "okx-key-0123456789abcd", "okx-secret-value", "okx-pass-value")
    row = ExchangeCredential.objects.get(exchange="okx")
    stored = " ".join([row.api_key_encrypted, row.secret_encrypted, row.passphrase_encrypted, row.key_hint])
    for value in ("okx-key-0123456789abcd", "okx-secret-value", "okx-pass-value"):
        assert value not in stored
    assert row.key_hint == "abcd"
    assert credentials.credentials_for("okx") == {
        "apiKey": "okx-key-0123456789abcd", "secret": "okx-secret-value", "password": "okx-pass-value"}


def test_env_keys_take_precedence(encryption_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.save_credentials("binance", "stored-key-0123456789", "stored-secret")
    assert credentials.key_source("binance").source == "stored"
    monkeypatch.setenv("BINANCE_API_KEY", "env-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "env-secret")
    assert credentials.credentials_for("binance") == {"apiKey": "env-key", "secret": "env-secret"}
    assert credentials.key_source("binance").source == "env"


def test_incomplete_env_keys_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_API_KEY", "env-key")
    monkeypatch.setenv("OKX_API_SECRET", "env-secret")  # OKX also needs the passphrase
    assert not credentials.has_trading_keys("okx")
    assert "OKX_API_PASSPHRASE" in (credentials.key_source("okx").problem or "")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "env-pass")
    assert credentials.has_trading_keys("okx")


def test_status_delegates_to_credentials(encryption_key: str) -> None:
    assert not status_has_keys("bybit")
    credentials.save_credentials("bybit", "bybit-key-0123456789", "bybit-secret")
    assert status_has_keys("bybit")


def test_undecryptable_keys_mean_public_only(encryption_key: str, settings: Any) -> None:
    credentials.save_credentials("bybit", "bybit-key-0123456789", "bybit-secret")
    settings.CREDENTIALS_ENCRYPTION_KEY = new_encryption_key()  # the key was lost or changed
    assert credentials.credentials_for("bybit") is None
    source = credentials.key_source("bybit")
    assert not source.complete and "decrypt" in (source.problem or "")


def test_a_live_action_without_keys_is_refused_with_the_reason() -> None:
    with pytest.raises(ApiError) as raised:
        credentials.require_live_credentials("binance")
    assert raised.value.error_code == "PUBLIC_ONLY"
    message = str(raised.value.detail)
    assert "publicOnly" in message and "BINANCE_API_KEY" in message and "paper" in message


async def test_credentials_can_be_read_inside_an_event_loop(encryption_key: str, monkeypatch: Any) -> None:
    """venue_for() runs in async code; the stored-key lookup must not trip Django's async guard."""
    monkeypatch.setenv("BYBIT_API_KEY", "env-key")
    monkeypatch.setenv("BYBIT_API_SECRET", "env-secret")
    assert credentials.has_trading_keys("bybit")
    assert not credentials.has_trading_keys("binance")  # falls through to the (empty) store off the loop


def test_an_unreadable_store_means_public_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import DatabaseError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("relation does not exist")

    monkeypatch.setattr(ExchangeCredential.objects, "filter", broken)
    assert credentials.has_trading_keys("binance") is False
    assert credentials.credentials_for("binance") is None

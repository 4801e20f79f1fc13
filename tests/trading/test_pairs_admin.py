"""Django admin for pairs: list filters, and the market checks on save."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from django.test import Client

from exchanges.connectivity import forget_markets
from trading.models import Pair


@pytest.fixture
def admin_client_(db) -> Client:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser(username="ada", password="correct horse battery")
    client = Client()
    client.force_login(user)
    return client


FORM = {
    "id": "",
    "enabled": "on",
    "direction": "auto",
    "leg1_exchange": "bybit",
    "leg1_symbol": "BTCUSDT",
    "leg1_type": "linear",
    "leg2_exchange": "binance",
    "leg2_symbol": "BTCUSDT",
    "leg2_type": "spot",
    "threshold": "0.1",
    "qty": "0.001",
    "total_amount": "200",
}


def test_it_lists_pairs_with_filters(admin_client_) -> None:
    Pair.objects.create(
        id="bybit_binance_btc",
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
    response = admin_client_.get("/admin/trading/pair/?enabled__exact=1&leg1_exchange__exact=bybit")
    assert response.status_code == 200
    assert b"bybit_binance_btc" in response.content


def test_it_refuses_to_save_an_unchecked_pair_when_the_exchange_is_down(admin_client_, settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EXCHANGE_VENUE_URL = f"http://127.0.0.1:{port}"
    forget_markets()
    try:
        response = admin_client_.post("/admin/trading/pair/add/", FORM)
    finally:
        forget_markets()
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert "EXCHANGE_UNAVAILABLE" in str(errors["__all__"]), errors
    assert not Pair.objects.exists()


def test_it_refuses_identical_legs(admin_client_) -> None:
    form = {**FORM, "leg1_exchange": "binance", "leg1_type": "spot"}
    response = admin_client_.post("/admin/trading/pair/add/", form)
    assert response.status_code == 200
    assert b"leg 2 must differ from leg 1" in response.content
    assert not Pair.objects.exists()

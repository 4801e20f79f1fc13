"""`GET /api/account/okx`: live positions in base units, through a MOCK OKX REST layer.

ccxt counts positions in contracts (OKX ETH-USDT-SWAP: 1 contract = 0.1 ETH); the account
endpoint shows base units, as the venue and the paper account do. Everything above HTTP is
real ccxt: `MockOkxRest` only answers the requests ccxt makes, from the recordings:

- `/account/balance`: `okx/trading/rest_account_balance.json` as recorded.
- `/account/positions`: no open-position response is recorded; the one row is derived from the
  recorded closed position (`okx/trading/ETH-USDT-SWAP_2025-01-13_rest_positions-history.json`)
  as it stood while open: `pos` = its `openMaxPos`, `avgPx` = `openAvgPx`, `markPx` = the
  `closeAvgPx` it was closed at, `upl` = the `pnl` it was closed with; every other field as recorded.
- markets: ccxt's parse of the recorded instruments (`okx/metadata/*_recent_fixture.json`),
  in the process's shared cache as a first load would leave them.

The recorded pnl settles the unit: -0.0213 USDT = (3224.8 - 3226.93) x 0.01 ETH, i.e. the
0.1 contracts are 0.01 ETH; read as 0.1 ETH it would be -0.213.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt
import pytest

from exchanges import connectivity
from exchanges.symbols import Exchange
from exchanges.venues import LiveVenue
from tests.exchanges.contract_markets import OKX_SWAP_RECENT, okx_client, seed

OKX_BALANCE = "okx/trading/rest_account_balance.json"
OKX_POSITIONS_HISTORY = "okx/trading/ETH-USDT-SWAP_2025-01-13_rest_positions-history.json"
OKX_KEYS = {"apiKey": "okx-key-0123456789abcdef", "secret": "okx-secret-0123456789", "password": "okx-passphrase-01"}
ETH_SWAP = "ETH/USDT:USDT"


def closed_port() -> int:
    """A loopback port nothing listens on: any request that escaped the mock is refused there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_position_row(data_dir: Path) -> dict[str, Any]:
    """Derived: the recorded closed ETH-USDT-SWAP position as it stood while open (see the module doc)."""
    recorded = json.loads((data_dir / OKX_POSITIONS_HISTORY).read_text())["data"][0]
    return {**recorded, "pos": recorded["openMaxPos"], "avgPx": recorded["openAvgPx"],
            "markPx": recorded["closeAvgPx"], "upl": recorded["pnl"]}


class MockOkxRest:
    """MOCK OKX REST: answers ccxt's private account requests; `errors` maps a path suffix to a raise."""

    def __init__(self, data_dir: Path, errors: dict[str, Exception] | None = None) -> None:
        self.balance = json.loads((data_dir / OKX_BALANCE).read_text())
        self.positions = {"code": "0", "msg": "", "data": [open_position_row(data_dir)]}
        self.errors = errors or {}
        self.requests: list[str] = []
        self.unmocked: list[str] = []
        self.clients_closed = 0

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        path = urlsplit(url).path
        self.requests.append(path.rsplit("/api/v5", 1)[-1])
        for suffix, error in self.errors.items():
            if path.endswith(suffix):
                raise error
        if path.endswith("/account/balance"):
            return self.balance
        if path.endswith("/account/positions"):
            return self.positions
        self.unmocked.append(path)
        raise ccxt.NetworkError(f"MockOkxRest: {path} is not mocked")

    def install(self, client: Any) -> Any:
        """Route one real ccxt client's HTTP through this mock (and count its closing)."""
        client.fetch = self.fetch
        close = client.close

        async def counted_close() -> None:
            self.clients_closed += 1
            await close()

        client.close = counted_close
        return client


@pytest.fixture
def okx_markets(data_dir: Path, settings: Any) -> Iterator[Any]:
    """Recorded OKX markets in the shared cache; OKX keys; any escaped request meets a closed port."""
    settings.EXCHANGE_VENUE_URL = f"http://127.0.0.1:{closed_port()}"
    settings.EXCHANGE_TIMEOUT_MS = 3000
    client = okx_client(data_dir, OKX_SWAP_RECENT)
    connectivity.forget_markets()
    seed(Exchange.OKX, client)
    yield client
    connectivity.forget_markets()


@pytest.fixture
def okx_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_API_KEY", OKX_KEYS["apiKey"])
    monkeypatch.setenv("OKX_API_SECRET", OKX_KEYS["secret"])
    monkeypatch.setenv("OKX_API_PASSPHRASE", OKX_KEYS["password"])


def mock_okx(monkeypatch: pytest.MonkeyPatch, mock: MockOkxRest) -> MockOkxRest:
    real_client = connectivity.async_client

    def client(exchange: Any, credentials: dict[str, str] | None = None) -> Any:
        return mock.install(real_client(exchange, credentials))

    monkeypatch.setattr(connectivity, "async_client", client)
    return mock


def assert_no_key_in(text: str) -> None:
    for value in OKX_KEYS.values():
        assert value not in text


@pytest.mark.django_db
def test_okx_positions_are_shown_in_base_units(api: Any, okx_markets: Any, okx_keys: None, data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mock = mock_okx(monkeypatch, MockOkxRest(data_dir))
    response = api.get("/api/account/okx")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["mode"] == "live" and data["paper"] is False and data["positionsError"] is None
    assert data["positions"] == [{"symbol": "ETHUSDT", "type": "linear", "side": "long", "qty": 0.01,
                                  "entryPrice": 3226.93, "markPrice": 3224.8, "unrealizedPnl": -0.0213,
                                  "leverage": 3.0, "paper": False}]
    # The unit, from the recordings alone: ctVal x contracts, and the recorded pnl at that size.
    row = open_position_row(data_dir)
    ct_val = Decimal(okx_markets.markets[ETH_SWAP]["info"]["ctVal"])
    assert (ct_val, Decimal(row["pos"])) == (Decimal("0.1"), Decimal("0.1"))
    qty = Decimal(str(data["positions"][0]["qty"]))
    assert qty == Decimal(row["pos"]) * ct_val
    assert qty * (Decimal(row["markPx"]) - Decimal(row["avgPx"])) == Decimal(row["pnl"])
    # Balances as recorded (ccxt's free/used/total of availBal/frozen/eq).
    (usdt,) = [b for b in data["balances"] if b["asset"] == "USDT"]
    detail = mock.balance["data"][0]["details"][0]
    assert (usdt["free"], usdt["total"]) == (float(detail["availBal"]), float(detail["eq"]))
    # Markets came from the shared cache: no instrument request, one balance and one positions read.
    assert mock.requests == ["/account/balance", "/account/positions"] and not mock.unmocked
    assert mock.clients_closed == 1
    assert_no_key_in(response.content.decode())


@pytest.mark.django_db
async def test_the_account_and_the_venue_agree_on_a_position(okx_markets: Any, data_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same recorded position through the venue (what execution reads) and the account endpoint."""
    from exchanges.account_views import live_account

    mock = mock_okx(monkeypatch, MockOkxRest(data_dir))
    account = await live_account(Exchange.OKX, OKX_KEYS)
    venue = LiveVenue(Exchange.OKX, credentials=OKX_KEYS)
    mock.install(venue.client)
    try:
        (position,) = await venue.fetch_positions()
    finally:
        await venue.close()
    assert position["symbol"] == ETH_SWAP and position["qty"] == Decimal("0.01")
    assert [p["qty"] for p in account["positions"]] == [float(position["qty"])]


@pytest.mark.django_db
def test_a_short_position_is_negative(api: Any, okx_markets: Any, okx_keys: None, data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    mock = MockOkxRest(data_dir)
    # Derived: the same row in hedge mode's short side.
    mock.positions["data"][0] = {**mock.positions["data"][0], "posSide": "short", "direction": "short"}
    mock_okx(monkeypatch, mock)
    (position,) = api.get("/api/account/okx").json()["data"]["positions"]
    assert (position["side"], position["qty"]) == ("short", -0.01)


@pytest.mark.django_db
@pytest.mark.parametrize("error", [ccxt.NetworkError("okx GET https://www.okx.com/api/v5/account/balance"),
                                   ccxt.RequestTimeout("okx timed out")])
def test_an_unreachable_okx_is_the_envelope_error(api: Any, okx_markets: Any, okx_keys: None, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    mock = mock_okx(monkeypatch, MockOkxRest(data_dir, errors={"/account/balance": error}))
    response = api.get("/api/account/okx")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["error"]["code"] == "EXCHANGE_UNAVAILABLE" and "okx cannot be reached" in body["error"]["message"]
    assert "data" not in body or body.get("data") is None
    assert mock.clients_closed == 1  # closed on the way out
    assert_no_key_in(response.content.decode())


@pytest.mark.django_db
def test_a_refused_connection_is_the_envelope_error(api: Any, okx_markets: Any, okx_keys: None) -> None:
    """No mock at all: ccxt's real HTTP against a loopback port nobody listens on."""
    response = api.get("/api/account/okx")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "EXCHANGE_UNAVAILABLE"
    assert_no_key_in(response.content.decode())


@pytest.mark.django_db
def test_positions_refused_still_show_the_balances(api: Any, okx_markets: Any, okx_keys: None, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    refused = ccxt.PermissionDenied(f"okx {{\"code\":\"50120\",\"msg\":\"key {OKX_KEYS['apiKey']} lacks read\"}}")
    mock_okx(monkeypatch, MockOkxRest(data_dir, errors={"/account/positions": refused}))
    response = api.get("/api/account/okx")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert any(b["asset"] == "USDT" for b in data["balances"])
    assert data["positions"] == []
    assert data["positionsError"]["code"] == "AUTHENTICATION_FAILED"
    assert_no_key_in(response.content.decode())


@pytest.mark.django_db
def test_a_contract_market_without_a_size_shows_no_figure(api: Any, okx_markets: Any, okx_keys: None,
                                                          data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Derived: the cached ETH-USDT-SWAP market with its contractSize removed. No 500, no figure 10x off."""
    markets = {**okx_markets.markets, ETH_SWAP: {**okx_markets.markets[ETH_SWAP], "contractSize": None}}
    connectivity.forget_markets()
    connectivity._MARKETS[Exchange.OKX] = (markets, okx_markets.currencies, connectivity.time.monotonic())
    mock_okx(monkeypatch, MockOkxRest(data_dir))
    response = api.get("/api/account/okx")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["positions"] == [] and any(b["asset"] == "USDT" for b in data["balances"])
    assert data["positionsError"]["code"] == "EXCHANGE_UNAVAILABLE"
    assert "contract size" in data["positionsError"]["message"]

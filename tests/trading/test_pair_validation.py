"""Market checks on real Binance markets parsed from the recorded exchangeInfo (no network)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbsite.redis_client import get_redis, key
from exchanges import connectivity
from exchanges.contracts import ContractSizeUnknown, from_contracts
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.exchanges.contract_markets import bitget_client, okx_client
from trading import pair_validation
from trading.pair_validation import LegCheck, check_leg_market, combine

SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
PERP = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.LINEAR)
OKX_PERP = Instrument(Exchange.OKX, "BTCUSDT", MarketType.LINEAR)
OKX_SPOT = Instrument(Exchange.OKX, "BTCUSDT", MarketType.SPOT)
SWAP = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def binance(data_dir: Path) -> Any:
    """A real ccxt client holding markets parsed from the recorded 2021 exchangeInfo files."""
    client = ccxt.binance()
    client.options["crossMarginPairsData"] = []
    client.options["isolatedMarginPairsData"] = []
    markets = []
    for name in ("spot_exchangeInfo_2021-10-12_trimmed.json", "usdm_exchangeInfo_2021-07-22_trimmed.json"):
        recorded = json.loads((data_dir / "binance" / "metadata" / name).read_text())
        markets.extend(client.parse_markets(recorded["symbols"]))
    client.set_markets(markets)
    return client


@pytest.fixture(scope="module")
def okx(data_dir: Path) -> Any:
    """ccxt's parse of the recorded 2022 OKX instruments: BTC-USDT-SWAP is whole contracts of 0.01 BTC."""
    return okx_client(data_dir)


@pytest.fixture(scope="module")
def bitget(data_dir: Path) -> Any:
    """ccxt's parse of the recorded Bitget v2 items: USDT-M amounts are base units (contractSize 1)."""
    return bitget_client(data_dir)


def check(client: Any, instrument: Instrument, qty: str, price: str | None = "61800") -> tuple[dict, list]:
    market = client.markets[instrument.unified]
    return check_leg_market(
        "leg1",
        instrument,
        market,
        Decimal(qty),
        client.amount_to_precision,
        client.precisionMode,
        Decimal(price) if price else None,
    )


def test_it_accepts_a_qty_on_the_step_above_the_minimums(binance) -> None:
    assert check(binance, SPOT, "0.001") == ({}, [])
    assert check(binance, PERP, "0.001") == ({}, [])


def test_it_reports_a_qty_off_the_lot_step_with_what_the_exchange_would_trade(binance) -> None:
    errors, _ = check(binance, SPOT, "0.0012345")
    assert errors == {
        "qty": [
            "leg1 (binance BTCUSDT spot): 0.0012345 is not a multiple of the lot step (step 0.00001); "
            "the exchange would trade 0.00123"
        ]
    }


def test_it_reports_a_qty_below_the_minimum_order_size(binance) -> None:
    errors, _ = check(binance, PERP, "0.0005")
    assert errors["qty"][0] == "leg1 (binance BTCUSDT linear): 0.0005 BTC is below the minimum order size 0.001"


def test_it_reports_a_notional_below_the_exchange_minimum(binance) -> None:
    # Spot MIN_NOTIONAL was 10 USDT in 2021: 0.0001 BTC at 61800 is 6.18.
    errors, _ = check(binance, SPOT, "0.0001")
    assert errors["qty"] == [
        "leg1 (binance BTCUSDT spot): notional 6.18 at the reference price 61800 is below the exchange minimum 10"
    ]


def test_it_notes_a_skipped_notional_check_without_a_price(binance) -> None:
    errors, notes = check(binance, SPOT, "0.0001", price=None)
    assert errors == {}
    assert notes == ["leg1 (binance BTCUSDT spot): minimum notional 10 not checked (no reference price)"]


def test_it_reports_a_qty_above_the_maximum(binance) -> None:
    errors, _ = check(binance, PERP, "5000")
    assert "above the maximum order size 1000" in errors["qty"][0]


def test_it_converts_base_qty_to_contracts() -> None:
    okx_style = {"contract": True, "contractSize": 0.01}
    assert pair_validation.contracts_for(okx_style, Decimal("0.05")) == Decimal("5")
    assert pair_validation.contracts_for({"contract": False}, Decimal("0.05")) == Decimal("0.05")


@given(qty=st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=8, allow_nan=False,
                       allow_infinity=False))
def test_contracts_for_keeps_its_old_arithmetic_on_the_recorded_markets(okx: Any, bitget: Any,
                                                                        qty: Decimal) -> None:
    """Now `exchanges.contracts`; on recorded markets the same figures as the old `qty / contractSize`."""
    swap = okx.markets[SWAP]
    contracts = pair_validation.contracts_for(swap, qty)
    assert contracts == qty / Decimal("0.01")  # the old arithmetic, exact for 8 places / 0.01
    assert from_contracts(contracts, Decimal(str(swap["contractSize"]))) == qty
    assert pair_validation.contracts_for(okx.markets["BTC/USDT"], qty) == qty  # spot: base units
    assert pair_validation.contracts_for(bitget.markets[SWAP], qty) == qty  # Bitget USDT-M: contractSize 1


def test_it_checks_okx_swap_lots_in_contracts(okx: Any) -> None:
    """minSz and lotSz 1 on the 2022 BTC-USDT-SWAP are one contract, 0.01 BTC."""
    assert check(okx, OKX_PERP, "0.05") == ({}, [])
    errors, _ = check(okx, OKX_PERP, "0.015")
    assert errors == {"qty": ["leg1 (okx BTCUSDT linear): 1.5 is not a multiple of the lot step (step 1); "
                              "the exchange would trade 1"]}
    errors, _ = check(okx, OKX_PERP, "0.005")
    assert errors == {"qty": ["leg1 (okx BTCUSDT linear): 0.5 contracts is below the minimum order size 1"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def okx_without_contract_size(okx: Any, settings: Any) -> Iterator[None]:
    """Derived: the recorded OKX markets with BTC-USDT-SWAP's contractSize removed, in the process cache.

    The spot leg's reference price is a cached book (test values), so nothing is requested; a request
    that escaped would meet a loopback port nobody listens on.
    """
    settings.EXCHANGE_VENUE_URL = f"http://127.0.0.1:{closed_port()}"
    settings.EXCHANGE_TIMEOUT_MS = 3000
    markets = {**okx.markets, SWAP: {**okx.markets[SWAP], "contractSize": None}}
    connectivity.forget_markets()
    connectivity._MARKETS[Exchange.OKX] = (markets, okx.currencies, time.monotonic())
    get_redis().set(key("book", "okx", "spot", "BTCUSDT"),
                    json.dumps({"exchange": "okx", "symbol": "BTCUSDT", "bids": [["100", "1"]], "asks": [["102", "1"]]}))
    yield
    connectivity.forget_markets()


def test_a_contract_market_without_a_size_is_refused_like_an_unlisted_one(okx_without_contract_size: None) -> None:
    with pytest.raises(ContractSizeUnknown):  # the pure conversion never guesses a size
        pair_validation.contracts_for({"contract": True, "contractSize": None, "symbol": SWAP}, Decimal("0.05"))
    result = pair_validation.check_pair(OKX_PERP, OKX_SPOT, Decimal("0.05"), Decimal("1000"))
    assert result.errors == {"leg1": {"symbol": [
        "BTCUSDT (linear) on okx cannot be traded: BTC/USDT:USDT: contract market without a contract size"]}}
    leg1, leg2 = result.legs
    assert leg1.market is None  # so nothing downstream (TWAP's total check) sizes it either
    assert leg2.market is not None and leg2.reference_price == Decimal("101")


def test_it_folds_leg_errors_into_body_fields() -> None:
    checks = [
        LegCheck("leg1", SPOT, None, errors={"symbol": ["BTCUSDT (spot) is not listed on binance"]}),
        LegCheck("leg2", PERP, {"taker": 0.0005}, Decimal("60000"), {"qty": ["leg2 ...: too small"]}),
    ]
    result = combine(checks, Decimal("0.01"), Decimal("100"))
    assert result.errors == {
        "leg1": {"symbol": ["BTCUSDT (spot) is not listed on binance"]},
        "qty": ["leg2 ...: too small"],
        "totalAmount": ["100 is below one execution's notional (600.00 = qty × 60000)"],
    }
    assert checks[1].taker_fee == Decimal("0.0005")


def test_it_reads_the_reference_price_from_the_cached_book(db) -> None:
    get_redis().set(
        key("book", "binance", "spot", "BTCUSDT"),
        json.dumps({"exchange": "binance", "symbol": "BTCUSDT", "bids": [["100", "1"]], "asks": [["102", "2"]]}),
    )
    assert pair_validation.cached_reference_price(SPOT) == Decimal("101")
    get_redis().set(key("book", "binance", "linear", "BTCUSDT"), "not json")
    assert pair_validation.cached_reference_price(PERP) is None


def test_it_registers_enabled_pair_legs_with_market_data(db) -> None:
    from exchanges import market_data
    from trading.apps import enabled_pair_instruments
    from trading.models import Pair

    Pair.objects.create(
        id="p1",
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
    Pair.objects.create(
        id="p2",
        leg1_exchange="okx",
        leg1_symbol="ETHUSDT",
        leg1_type="spot",
        leg2_exchange="binance",
        leg2_symbol="ETHUSDT",
        leg2_type="spot",
        threshold=Decimal("0.1"),
        qty=Decimal("0.01"),
        total_amount=Decimal("200"),
        enabled=False,
    )
    assert enabled_pair_instruments() == [
        Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR),
        Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT),
    ]
    assert Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR) in market_data.watched_instruments()


@pytest.mark.django_db(transaction=True)
async def test_it_lists_pair_legs_from_inside_the_market_data_event_loop() -> None:
    """The market-data loop calls sources synchronously; the ORM must not run on the loop itself."""
    from asgiref.sync import sync_to_async

    from trading.apps import enabled_pair_instruments
    from trading.models import Pair

    await sync_to_async(Pair.objects.create)(
        id="loop",
        leg1_exchange="bybit",
        leg1_symbol="ETHUSDT",
        leg1_type="linear",
        leg2_exchange="binance",
        leg2_symbol="ETHUSDT",
        leg2_type="spot",
        threshold=Decimal("0.1"),
        qty=Decimal("0.01"),
        total_amount=Decimal("200"),
    )
    assert enabled_pair_instruments() == [
        Instrument(Exchange.BYBIT, "ETHUSDT", MarketType.LINEAR),
        Instrument(Exchange.BINANCE, "ETHUSDT", MarketType.SPOT),
    ]

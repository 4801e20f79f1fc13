"""Market checks on real Binance markets parsed from the recorded exchangeInfo (no network)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from arbsite.redis_client import get_redis, key
from exchanges.symbols import Exchange, Instrument, MarketType
from trading import pair_validation
from trading.pair_validation import LegCheck, check_leg_market, combine

SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
PERP = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.LINEAR)


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

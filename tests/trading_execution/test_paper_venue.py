"""The paper venue fills exactly as an independent walk of the same recorded book."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arbsite.errors import ExchangeUnavailable, InsufficientFunds, RiskRejected
from exchanges.venues import OrderStatus, PaperVenue
from tests.trading_execution.helpers import BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC, write_recorded_book

BINANCE_SPOT_TAKER = Decimal("0.001")  # ccxt's binance spot taker, as parsed from the recorded market


def independent_walk(rows: list[list[str]], qty: Decimal, limit: Decimal | None = None,
                     buy: bool = True) -> tuple[Decimal, Decimal]:
    """(filled, notional) taking `qty` from recorded wire levels, stopping at `limit`."""
    filled = notional = Decimal(0)
    for price_text, size_text in rows:
        price, size = Decimal(price_text), Decimal(size_text)
        if limit is not None and (price > limit if buy else price < limit):
            break
        take = min(size, qty - filled)
        filled += take
        notional += take * price
        if filled == qty:
            break
    return filled, notional


def recorded_asks(data_dir: Path, depth: int) -> list[list[str]]:
    raw = json.loads((data_dir / "binance/orderbook/spot_BTCUSDT_2024-08-08_rest_depth_limit1000.json").read_text())
    return raw["asks"][:depth]


async def test_it_fills_a_market_buy_as_an_independent_walk(data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    venue = PaperVenue("binance")
    try:
        result = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("1.6"), client_order_id="t1")
        balances = await venue.fetch_balance()
    finally:
        await venue.close()
    filled, notional = independent_walk(recorded_asks(data_dir, 50), Decimal("1.6"))
    assert filled == Decimal("1.6")
    assert result.status is OrderStatus.FILLED and result.paper
    assert result.filled == filled
    assert result.average == notional / filled
    assert result.fee == notional * BINANCE_SPOT_TAKER
    assert len(result.fills) > 1  # the walk went past the top level
    assert balances["USDT"] == Decimal("100000") - notional - notional * BINANCE_SPOT_TAKER
    assert balances["BTC"] == Decimal("1") + filled


async def test_it_fills_partially_when_depth_is_short(data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_SPOT_BTC, depth=3)
    venue = PaperVenue("binance")
    try:
        result = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("50"), client_order_id="t2")
    finally:
        await venue.close()
    filled, notional = independent_walk(recorded_asks(data_dir, 3), Decimal("50"))
    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.filled == filled < Decimal("50")
    assert result.average == notional / filled


async def test_it_stops_a_limit_order_at_its_price(data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    asks = recorded_asks(data_dir, 50)
    limit = Decimal(asks[2][0])
    venue = PaperVenue("binance")
    try:
        result = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("20"), order_type="limit", price=limit,
                                          client_order_id="t3")
    finally:
        await venue.close()
    filled, notional = independent_walk(asks, Decimal("20"), limit)
    assert result.filled == filled
    assert result.average == notional / filled
    assert all(f.price <= limit for f in result.fills)


async def test_it_is_idempotent_by_client_order_id(data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    venue = PaperVenue("binance")
    try:
        first = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.5"), client_order_id="same")
        second = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.5"), client_order_id="same")
        balances = await venue.fetch_balance()
        found = await venue.fetch_order(BINANCE_SPOT_BTC, "same")
        missing = await venue.fetch_order(BINANCE_SPOT_BTC, "other")
    finally:
        await venue.close()
    assert first == second == found
    assert missing is None
    assert balances["BTC"] == Decimal("1.5")


async def test_it_tracks_a_linear_position_and_realises_pnl(data_dir: Path) -> None:
    write_recorded_book(data_dir, BYBIT_LINEAR_BTC)
    venue = PaperVenue("bybit")
    try:
        opened = await venue.create_order(BYBIT_LINEAR_BTC, "sell", Decimal("0.01"), client_order_id="o1")
        positions = await venue.fetch_positions()
        closed = await venue.create_order(BYBIT_LINEAR_BTC, "buy", Decimal("0.01"), client_order_id="o2")
        after = await venue.fetch_positions()
        balances = await venue.fetch_balance()
    finally:
        await venue.close()
    assert positions == [{"symbol": "BTCUSDT", "qty": Decimal("-0.01"), "entryPrice": opened.average, "paper": True}]
    assert after == []
    assert opened.average is not None and closed.average is not None
    realised = (opened.average - closed.average) * Decimal("0.01")
    assert balances["USDT"] == Decimal("100000") - opened.fee - closed.fee + realised


async def test_it_refuses_what_the_account_cannot_pay(data_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PAPER_STARTING_FUNDS = {"USDT": "10"}
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    venue = PaperVenue("binance")
    try:
        with pytest.raises(InsufficientFunds):
            await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.01"), client_order_id="poor")
        with pytest.raises(InsufficientFunds):
            await venue.create_order(BINANCE_SPOT_BTC, "sell", Decimal("0.01"), client_order_id="nobtc")
        assert await venue.fetch_order(BINANCE_SPOT_BTC, "poor") is None
    finally:
        await venue.close()


async def test_it_enforces_precision_and_min_notional(data_dir: Path) -> None:
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    venue = PaperVenue("binance")
    try:
        rounded = await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.0123456789"), client_order_id="p1")
        with pytest.raises(RiskRejected, match="below the minimum"):
            # 0.0001 BTC at ~61.8k is ~6 USDT, under the recorded 10 USDT MIN_NOTIONAL
            await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.0001"), client_order_id="p2")
    finally:
        await venue.close()
    assert rounded.amount == Decimal("0.01234")  # recorded stepSize 0.00001, truncated by ccxt


async def test_it_needs_a_live_book(data_dir: Path) -> None:
    venue = PaperVenue("binance")
    try:
        with pytest.raises(ExchangeUnavailable, match="no live order book"):
            await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.01"), client_order_id="nobook")
    finally:
        await venue.close()

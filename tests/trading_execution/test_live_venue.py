"""LiveVenue's ccxt calls, against a labelled stub client (no network): precision, ids, lookups."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from arbsite.errors import RiskRejected
from exchanges import venues
from exchanges.symbols import Exchange
from exchanges.venues import LiveVenue, OrderStatus, PaperVenue, venue_for
from tests.trading_execution.helpers import BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC


class StubCcxtClient:
    """Records ccxt calls; answers like ccxt's unified order structure. Test double only."""

    def __init__(self, real: Any) -> None:
        self.real = real  # keeps the real markets and precision functions
        self.markets = real.markets
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.orders: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def create_order(self, symbol: str, type_: str, side: str, amount: float, price: float | None,
                           params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create_order", (symbol, type_, side, amount, price, params)))
        order = {"id": "A123", "clientOrderId": params["clientOrderId"], "status": "closed", "symbol": symbol,
                 "side": side, "type": type_, "amount": amount, "filled": amount, "average": price,
                 "fee": {"cost": 0.1, "currency": "USDT"}, "timestamp": 1726032003000}
        self.orders[params["clientOrderId"]] = order
        return order

    async def privateGetV5OrderRealtime(self, params: dict[str, Any]) -> dict[str, Any]:
        """Bybit v5 /order/realtime, answered in v5's shape (fields as in Bybit's docs; stub values)."""
        self.calls.append(("privateGetV5OrderRealtime", (params,)))
        order = self.orders.get(params.get("orderLinkId", ""))
        rows = [] if order is None else [{
            "orderId": order["id"], "orderLinkId": order["clientOrderId"], "symbol": params["symbol"],
            "side": order["side"].capitalize(), "orderType": order["type"].capitalize(),
            "price": str(order["average"] or 0), "qty": str(order["amount"]), "cumExecQty": str(order["filled"]),
            "cumExecValue": str(order["filled"] * (order["average"] or 0)), "avgPrice": str(order["average"] or ""),
            "cumExecFee": "0.1", "orderStatus": "Filled", "timeInForce": "IOC",
            "createdTime": "1726032003000", "updatedTime": "1726032003000",
        }]
        return {"retCode": 0, "retMsg": "OK", "result": {"category": params["category"], "list": rows}}

    async def fetch_order(self, id_: str | None, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("fetch_order", (id_, symbol, params)))
        for value in params.values():
            if value in self.orders:
                return self.orders[value]
        raise ccxt.OrderNotFound("Order does not exist")

    async def close(self) -> None:
        await self.real.close()


@pytest.fixture
def live_bybit() -> Any:
    venue = LiveVenue(Exchange.BYBIT, credentials={"apiKey": "stub", "secret": "stub"})
    venue.client = StubCcxtClient(venue.client)
    venue._markets.client = venue.client
    return venue


async def test_it_sends_rounded_amounts_with_the_client_id(live_bybit: Any) -> None:
    try:
        result = await live_bybit.create_order(BYBIT_LINEAR_BTC, "sell", Decimal("0.0123"), order_type="limit",
                                               price=Decimal("65000.123"), client_order_id="arbx1")
    finally:
        await live_bybit.close()
    assert live_bybit.client.calls[0][0] == "create_order"
    symbol, order_type, side, amount, price, params = live_bybit.client.calls[0][1]
    assert (symbol, order_type, side, amount, price) == ("BTC/USDT:USDT", "limit", "sell", 0.012, 65000.1)
    assert params == {"clientOrderId": "arbx1", "timeInForce": "IOC"}
    assert result.status is OrderStatus.FILLED and not result.paper
    assert (result.order_id, result.filled, result.average, result.fee) == (
        "A123", Decimal("0.012"), Decimal("65000.1"), Decimal("0.1"))


async def test_it_finds_an_order_by_client_id_with_the_exchange_param(live_bybit: Any) -> None:
    try:
        await live_bybit.create_order(BYBIT_LINEAR_BTC, "buy", Decimal("0.01"), client_order_id="arbx2")
        found = await live_bybit.fetch_order(BYBIT_LINEAR_BTC, "arbx2")
        missing = await live_bybit.fetch_order(BYBIT_LINEAR_BTC, "arbzz")
    finally:
        await live_bybit.close()
    assert found is not None and found.client_order_id == "arbx2"
    assert (found.status, found.side.value, found.filled) == (OrderStatus.FILLED, "buy", Decimal("0.01"))
    assert missing is None
    lookups = [c[1][0] for c in live_bybit.client.calls if c[0] == "privateGetV5OrderRealtime"]
    assert lookups[-2:] == [{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "arbx2"},
                            {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "arbzz"}]


async def test_it_finds_a_binance_order_by_orig_client_order_id() -> None:
    venue = LiveVenue(Exchange.BINANCE, credentials={"apiKey": "stub", "secret": "stub"})
    venue.client = StubCcxtClient(venue.client)
    venue._markets.client = venue.client
    try:
        await venue.create_order(BINANCE_SPOT_BTC, "buy", Decimal("0.001"), order_type="limit",
                                 price=Decimal("61837.64"), client_order_id="arbx4")
        found = await venue.fetch_order(BINANCE_SPOT_BTC, "arbx4")
    finally:
        await venue.close()
    assert found is not None and found.filled == Decimal("0.001")
    assert ("fetch_order", (None, "BTC/USDT", {"origClientOrderId": "arbx4"})) in venue.client.calls


async def test_it_refuses_below_the_minimum_before_sending(live_bybit: Any) -> None:
    try:
        with pytest.raises(RiskRejected, match="below the minimum"):
            # recorded Bybit minNotionalValue is 5 USDT
            await live_bybit.create_order(BYBIT_LINEAR_BTC, "buy", Decimal("0.001"), order_type="limit",
                                          price=Decimal("1000"), client_order_id="arbx3")
    finally:
        await live_bybit.close()
    assert live_bybit.client.calls == []


@pytest.mark.django_db
async def test_it_chooses_paper_without_keys_and_live_with_them(monkeypatch: pytest.MonkeyPatch) -> None:
    paper = venue_for("binance")
    monkeypatch.setenv("BINANCE_API_KEY", "k")
    monkeypatch.setenv("BINANCE_API_SECRET", "s")
    live = venue_for("binance")
    try:
        assert isinstance(paper, PaperVenue) and paper.paper
        assert isinstance(live, LiveVenue) and not live.paper
        assert venues.trading_credentials(Exchange.BINANCE) == {"apiKey": "k", "secret": "s"}
    finally:
        await paper.close()
        await live.close()


async def test_precision_is_ccxts(live_bybit: Any) -> None:
    try:
        assert live_bybit.amount_to_precision(BYBIT_LINEAR_BTC,
                                              Decimal("0.0009")) == 0
        assert live_bybit.price_to_precision(BYBIT_LINEAR_BTC, Decimal("65114.26")) == Decimal("65114.3")
    finally:
        await live_bybit.close()

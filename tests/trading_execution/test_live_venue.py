"""LiveVenue's ccxt calls, against a labelled stub client (no network): precision, ids, lookups."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from arbsite.errors import RiskRejected, UpstreamError
from exchanges import venues
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import LiveVenue, OrderStatus, OrderType, PaperVenue, Side, venue_for
from tests.exchanges.contract_markets import OKX_ORDERS_HISTORY, OKX_SWAP_2022, OKX_SWAP_RECENT, okx_client, seed
from tests.trading_execution.helpers import BINANCE_LINEAR_BTC, BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC


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


# --------------------------------------------------------------------------- contract sizes (OKX swaps)

OKX_SWAP_BTC = Instrument(Exchange.OKX, "BTCUSDT", MarketType.LINEAR)
OKX_KEYS = {"apiKey": "mock", "secret": "mock", "password": "mock"}


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


class MockOkxClient:
    """Test double for a ccxt.pro okx client: records calls, answers through ccxt's own OKX parser.

    Orders are the recorded orders-history item (BTC-USDT-SWAP) with its size fields set to what
    was sent (`sz`, `accFillSz` in contracts, as OKX counts them) and parsed by the real client's
    `parse_order`; placement answers OKX's acknowledgement (id only), so the venue reads the order
    back, as it must on OKX. `fill` caps the contracts filled; `errors` are raised by create_order
    in turn (then it works); `lookup_error` is raised by fetch_order.
    """

    def __init__(self, real: Any, template: dict[str, Any], *, fill: Decimal | None = None,
                 errors: list[BaseException] | None = None, lookup_error: BaseException | None = None,
                 positions: list[dict[str, Any]] | None = None) -> None:
        self.real = real
        self.markets = real.markets
        self.template = template
        self.fill = fill
        self.errors = list(errors or [])
        self.lookup_error = lookup_error
        self.positions = positions or []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.orders: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def create_order(self, symbol: str, type_: str, side: str, amount: float, price: float | None,
                           params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create_order", (symbol, type_, side, amount, price, params)))
        if self.errors:
            raise self.errors.pop(0)
        sent = Decimal(repr(amount))
        filled = sent if self.fill is None else min(self.fill, sent)
        cid = params["clientOrderId"]
        average = Decimal(self.template["avgPx"])
        size = Decimal(self.real.markets[symbol]["info"]["ctVal"])
        rate = Decimal(self.template["fee"]) / (Decimal(self.template["accFillSz"]) * size * average)
        raw = {**self.template, "clOrdId": cid, "ordId": f"9{len(self.orders)}", "side": side,
               "ordType": "ioc" if type_ == "limit" else "market", "px": "" if price is None else repr(price),
               "sz": _text(sent), "accFillSz": _text(filled), "fillSz": _text(filled),
               "avgPx": _text(average) if filled else "", "fillPx": _text(average) if filled else "",
               "fee": _text(filled * size * average * rate), "state": "filled" if filled == sent else "canceled"}
        self.orders[cid] = raw
        ack = {"clOrdId": cid, "ordId": raw["ordId"], "sCode": "0", "sMsg": "", "tag": "", "ts": raw["cTime"]}
        return self.real.parse_order(ack, self.real.market(symbol))

    async def fetch_order(self, id_: str | None, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("fetch_order", (id_, symbol, params)))
        if self.lookup_error is not None:
            raise self.lookup_error
        raw = self.orders.get(params.get("clOrdId", ""))
        if raw is None:
            raise ccxt.OrderNotFound("okx: order does not exist")
        return self.real.parse_order(raw, self.real.market(symbol))

    async def fetch_positions(self) -> list[dict[str, Any]]:
        self.calls.append(("fetch_positions", ()))
        return self.positions

    async def close(self) -> None:
        await self.real.close()


@pytest.fixture
def okx_order_template(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / OKX_ORDERS_HISTORY).read_text())["data"][0]


def okx_venue(data_dir: Path, template: dict[str, Any], swap_file: str = OKX_SWAP_2022,
              **mock: Any) -> LiveVenue:
    seed(Exchange.OKX, okx_client(data_dir, swap_file))
    venue = LiveVenue(Exchange.OKX, credentials=OKX_KEYS)
    venue.client = MockOkxClient(venue.client, template, **mock)
    venue._markets.client = venue.client
    return venue


def sent_amounts(venue: LiveVenue) -> list[Any]:
    return [c[1][3] for c in venue.client.calls if c[0] == "create_order"]


async def test_okx_a_base_qty_is_sent_as_contracts_and_recorded_in_base(
        data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    venue = okx_venue(data_dir, okx_order_template)
    try:
        rules = await venue.rules(OKX_SWAP_BTC)
        result = await venue.create_order(OKX_SWAP_BTC, "buy", Decimal("0.05"), client_order_id="okx1")
    finally:
        await venue.close()
    assert (rules.contract_size, rules.min_amount) == (Decimal("0.01"), Decimal("0.01"))
    symbol, order_type, side, amount, price, params = venue.client.calls[0][1]
    assert (symbol, order_type, side, amount, price) == ("BTC/USDT:USDT", "market", "buy", 5.0, None)
    assert params == {"clientOrderId": "okx1"}
    assert ("fetch_order", (None, "BTC/USDT:USDT", {"clOrdId": "okx1"})) in venue.client.calls  # ack only
    assert result.status is OrderStatus.FILLED and result.client_order_id == "okx1"
    assert (result.amount, result.filled, result.average) == (Decimal("0.05"), Decimal("0.05"), Decimal("103698.9"))
    assert result.notional == Decimal("5184.945")
    assert result.fee == Decimal("3.6294615") and result.fee_currency == "USDT"  # 0.07% of the notional


async def test_okx_a_part_contract_is_truncated_before_sending(
        data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    venue = okx_venue(data_dir, okx_order_template)
    try:
        assert venue.amount_to_precision(OKX_SWAP_BTC, Decimal("0.015")) == Decimal("0.01")
        result = await venue.create_order(OKX_SWAP_BTC, "sell", Decimal("0.015"), order_type="limit",
                                          price=Decimal("103698.94"), client_order_id="okx2")
    finally:
        await venue.close()
    symbol, order_type, side, amount, price, params = venue.client.calls[0][1]
    assert (symbol, order_type, side) == ("BTC/USDT:USDT", "limit", "sell")
    assert (amount, price, params["timeInForce"]) == (1.0, 103698.9, "IOC")  # one contract, never two
    assert (result.amount, result.filled, result.status) == (Decimal("0.01"), Decimal("0.01"), OrderStatus.FILLED)


async def test_okx_fractional_contracts_where_the_market_allows_them(
        data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    venue = okx_venue(data_dir, okx_order_template, OKX_SWAP_RECENT)  # lotSz 0.01 contract
    try:
        result = await venue.create_order(OKX_SWAP_BTC, "buy", Decimal("0.015"), client_order_id="okx3")
    finally:
        await venue.close()
    assert sent_amounts(venue) == [1.5]
    assert (result.amount, result.filled) == (Decimal("0.015"), Decimal("0.015"))


async def test_okx_a_fill_of_three_contracts_reads_back_as_003_btc(
        data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    venue = okx_venue(data_dir, okx_order_template, fill=Decimal(3))
    try:
        result = await venue.create_order(OKX_SWAP_BTC, "buy", Decimal("0.05"), order_type="limit",
                                          price=Decimal("103700"), client_order_id="okx4")
        again = await venue.fetch_order(OKX_SWAP_BTC, "okx4")
    finally:
        await venue.close()
    assert sent_amounts(venue) == [5.0]
    assert result.status is OrderStatus.PARTIALLY_FILLED  # IOC: 3 of 5 contracts, the rest cancelled
    assert (result.amount, result.filled) == (Decimal("0.05"), Decimal("0.03"))
    assert result.notional == Decimal("0.03") * Decimal("103698.9")
    assert again == result


async def test_okx_less_than_one_contract_is_refused_before_sending(
        data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    whole = okx_venue(data_dir, okx_order_template)
    try:
        with pytest.raises(RiskRejected, match=r"less than one lot .*contracts of 0\.01 BTC"):
            await whole.create_order(OKX_SWAP_BTC, "buy", Decimal("0.009"), client_order_id="okx5")
    finally:
        await whole.close()
    fractional = okx_venue(data_dir, okx_order_template, OKX_SWAP_RECENT)
    try:
        with pytest.raises(RiskRejected, match="less than one lot"):
            await fractional.create_order(OKX_SWAP_BTC, "buy", Decimal("0.00009"), client_order_id="okx6")
    finally:
        await fractional.close()
    assert whole.client.calls == [] and fractional.client.calls == []


async def test_okx_a_rejection_is_not_retried_and_a_429_is(
        data_dir: Path, okx_order_template: dict[str, Any], settings: Any) -> None:
    """The exceptions are what ccxt's okx raises for the recorded bodies (54109, then 50011 on HTTP 429)."""
    settings.RISK_RETRY_BASE_SECONDS = 0.001
    parser = ccxt.okx()

    def raised(status: int, name: str) -> BaseException:
        body = (data_dir / "okx/errors" / name).read_text()
        try:
            parser.handle_errors(status, "", "https://www.okx.com/api/v5/trade/order", "POST", {}, body,
                                 json.loads(body), {}, "{}")
        except ccxt.BaseError as exc:
            return exc
        raise AssertionError(f"ccxt raised nothing for {name}")

    rejected = raised(200, "place_order_rejected_54109.json")
    limited = raised(429, "http_429_rate_limit_50011.json")
    venue = okx_venue(data_dir, okx_order_template, errors=[rejected])
    try:
        with pytest.raises(UpstreamError, match="okx error"):
            await venue.create_order(OKX_SWAP_BTC, "buy", Decimal("0.05"), client_order_id="okx7")
    finally:
        await venue.close()
    assert sent_amounts(venue) == [5.0]  # once: its outcome is the exchange's refusal
    venue = okx_venue(data_dir, okx_order_template, errors=[limited])
    try:
        result = await venue.create_order(OKX_SWAP_BTC, "buy", Decimal("0.05"), client_order_id="okx8")
    finally:
        await venue.close()
    assert sent_amounts(venue) == [5.0, 5.0]  # the 429 retried with the same contract count
    assert (result.filled, result.status) == (Decimal("0.05"), OrderStatus.FILLED)


async def test_okx_lookups_missing_and_failing(data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    venue = okx_venue(data_dir, okx_order_template)
    try:
        assert await venue.fetch_order(OKX_SWAP_BTC, "never-sent") is None
    finally:
        await venue.close()
    venue = okx_venue(data_dir, okx_order_template, lookup_error=ccxt.AuthenticationError("okx 50111"))
    try:
        with pytest.raises(UpstreamError, match="credentials"):
            await venue.fetch_order(OKX_SWAP_BTC, "okx9")
    finally:
        await venue.close()


async def test_okx_positions_are_in_base_units(data_dir: Path, okx_order_template: dict[str, Any]) -> None:
    positions = [{"symbol": "BTC/USDT:USDT", "contracts": 3.0, "contractSize": 0.01, "side": "short",
                  "entryPrice": 103698.9}, {"symbol": "BTC/USDT:USDT", "contracts": 0.0, "side": "long"}]
    venue = okx_venue(data_dir, okx_order_template, positions=positions)
    try:
        got = await venue.fetch_positions()
    finally:
        await venue.close()
    assert got == [{"symbol": "BTC/USDT:USDT", "qty": Decimal("-0.03"), "entryPrice": Decimal("103698.9"),
                    "paper": False}]


def test_the_recorded_okx_swap_order_reads_back_in_base_units(data_dir: Path) -> None:
    """OKX's `sz`/`accFillSz` "0.03" on BTC-USDT-SWAP are contracts: 0.0003 BTC.

    The recorded fee settles it: 0.021776769 USDT is 0.07% of 0.0003 BTC x 103698.9 (31.10967 USDT);
    read as 0.03 BTC it would be a 0.0007% fee.
    """
    client = okx_client(data_dir, OKX_SWAP_RECENT)
    raw = json.loads((data_dir / OKX_ORDERS_HISTORY).read_text())["data"][0]
    assert (raw["instType"], raw["instId"]) == ("SWAP", "BTC-USDT-SWAP")
    market = client.market("BTC/USDT:USDT")
    parsed = client.parse_order(raw, market)
    result = venues.parse_ccxt_order(parsed, Exchange.OKX, OKX_SWAP_BTC, client_order_id="recorded",
                                     side=Side.BUY, order_type=OrderType.MARKET, amount=Decimal(0), price=None,
                                     contract_size=venues.rules_from_market(OKX_SWAP_BTC, market).contract_size)
    assert (result.amount, result.filled, result.status) == (Decimal("0.0003"), Decimal("0.0003"), OrderStatus.FILLED)
    assert result.average == Decimal("103698.9") and result.notional == Decimal("31.10967")
    assert (result.fee, result.fee_currency) == (Decimal("0.021776769"), "USDT")
    assert result.fee / result.notional == Decimal("0.0007")
    assert result.order_id == "2497956918703120384"


async def test_binance_and_bybit_linear_send_base_units_unchanged() -> None:
    for exchange, instrument in ((Exchange.BINANCE, BINANCE_LINEAR_BTC), (Exchange.BYBIT, BYBIT_LINEAR_BTC)):
        venue = LiveVenue(exchange, credentials={"apiKey": "stub", "secret": "stub"})
        venue.client = StubCcxtClient(venue.client)
        venue._markets.client = venue.client
        try:
            rules = await venue.rules(instrument)
            result = await venue.create_order(instrument, "buy", Decimal("0.0129"), client_order_id=f"{exchange}1")
        finally:
            await venue.close()
        assert rules.contract_size == 1
        assert venue.client.calls[0][1][3] == 0.012  # ccxt's amount = the base qty at the lot step
        assert (result.amount, result.filled) == (Decimal("0.012"), Decimal("0.012"))

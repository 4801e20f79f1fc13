"""Trading on the emulator through real ccxt clients: signatures, matching, money, rejections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from exchanges.connectivity import async_client, load_markets
from exchanges.symbols import Exchange
from tests.venue.replay import binance_book_at, bybit_book_at
from tests.venue.server import VenueEmulator
from tests.venue.trading import DEFAULT_FUNDS, TEST_ACCOUNTS, LiveBooks

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.emulator, pytest.mark.recorded]

BINANCE_KEY, BINANCE_SECRET = next(iter(TEST_ACCOUNTS["binance"].items()))
BYBIT_KEY, BYBIT_SECRET = next(iter(TEST_ACCOUNTS["bybit"].items()))
USDT = Decimal("1000000")


@pytest.fixture
def venue(venue_factory: Any) -> VenueEmulator:
    """The emulator, the Binance account rich enough to walk several levels of the spot BTC book."""
    return venue_factory(funds={"binance": {"USDT": str(USDT), "BTC": "1"}, "bybit": DEFAULT_FUNDS})


def _creds(exchange: str, secret: str | None = None, key: str | None = None) -> dict[str, str]:
    default_key, default_secret = next(iter(TEST_ACCOUNTS[exchange].items()))
    return {"apiKey": key or default_key, "secret": secret or default_secret}


@pytest.fixture
async def clients(venue: VenueEmulator) -> AsyncIterator[dict[str, Any]]:
    made = {name: async_client(name, _creds(name)) for name in ("binance", "bybit")}
    try:
        await load_markets(made["binance"], Exchange.BINANCE)
        await load_markets(made["bybit"], Exchange.BYBIT)
        yield made
    finally:
        for client in made.values():
            await client.close()


def _asks(venue: VenueEmulator, exchange: str, market: str, symbol: str) -> list[tuple[Decimal, Decimal]]:
    book = venue.on_loop(lambda: venue.venue.books.book(exchange, market, symbol))
    assert book is not None
    return list(book.top(50)[1])


async def test_a_binance_spot_ioc_buy_walks_the_book_up_to_its_limit(venue: VenueEmulator, clients: Any) -> None:
    asks = _asks(venue, "binance", "spot", "BTCUSDT")
    limit = asks[2][0]  # three levels are within the limit
    reachable = sum(q for p, q in asks[:3])
    qty = (reachable + Decimal("5")).quantize(Decimal("0.00001"))
    order = await clients["binance"].create_order(
        "BTC/USDT", "limit", "buy", float(qty), float(limit), {"clientOrderId": "walk1", "timeInForce": "IOC"})
    info = order["info"]
    assert info["status"] == "EXPIRED" and Decimal(info["executedQty"]) == reachable
    assert [Decimal(f["price"]) for f in info["fills"]] == [p for p, _ in asks[:3]]
    cost = sum(p * q for p, q in asks[:3])
    assert Decimal(info["cummulativeQuoteQty"]) == cost
    # The fee is taken in the asset received; the quote pays the cost.
    account = venue.account("binance")
    assert Decimal(account["spot"]["USDT"]) == USDT - cost
    assert Decimal(account["spot"]["BTC"]) == Decimal(1) + reachable * Decimal("0.999")
    fetched = await clients["binance"].fetch_order(None, "BTC/USDT", {"origClientOrderId": "walk1"})
    assert fetched["id"] == order["id"] and fetched["status"] == "expired"


async def test_binance_rejections_use_the_exchanges_codes(venue: VenueEmulator, clients: Any) -> None:
    binance = clients["binance"]
    await binance.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "dup1"})
    with pytest.raises(ccxt.BaseError, match="Duplicate order sent"):
        await binance.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "dup1"})
    with pytest.raises(ccxt.BadRequest, match="Filter failure: MIN_NOTIONAL"):
        await binance.create_order("BTC/USDT", "market", "buy", 0.0001, None, {"clientOrderId": "tiny"})
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await binance.create_order("BTC/USDT", "market", "buy", 50, None, {"clientOrderId": "huge"})
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):  # a limit order locks qty x price
        await binance.create_order("BTC/USDT", "limit", "buy", 1, 2_000_000, {"clientOrderId": "locks",
                                                                             "timeInForce": "IOC"})
    with pytest.raises(ccxt.BaseError, match="-2022"):
        await binance.create_order("BTC/USDT:USDT", "market", "buy", 0.001, None, {"clientOrderId": "ro",
                                                                                  "reduceOnly": True})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})
    venue.reject_orders("binance", "insufficient_balance")
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "forced"})
    venue.reject_orders("binance", "rate_limit")
    with pytest.raises(ccxt.DDoSProtection):
        await binance.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "limited"})
    placed = [o["clientOrderId"] for o in venue.orders("binance")]
    assert placed == ["dup1"]
    assert [a.client_id for a in venue.arrivals("binance")] == ["dup1", "dup1", "tiny", "huge", "locks", "ro",
                                                                "forced", "limited"]


async def test_binance_checks_keys_and_signatures(venue: VenueEmulator) -> None:
    wrong_secret = async_client("binance", _creds("binance", secret="not-the-secret"))
    unknown_key = async_client("binance", _creds("binance", key="nobody"))
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await wrong_secret.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await unknown_key.fetch_balance()
    finally:
        await wrong_secret.close()
        await unknown_key.close()


async def test_bybit_linear_fills_and_reports_the_position(venue: VenueEmulator, clients: Any) -> None:
    bybit = clients["bybit"]
    bids = venue.on_loop(lambda: venue.venue.books.book("bybit", "linear", "BTCUSDT")).top(5)[0]
    ack = await bybit.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, float(bids[0][0] - 1000),
                                   {"clientOrderId": "lin1", "timeInForce": "IOC"})
    assert ack["info"] == {"orderId": ack["id"], "orderLinkId": "lin1"}
    rows = (await bybit.privateGetV5OrderRealtime({"category": "linear", "symbol": "BTCUSDT",
                                                   "orderLinkId": "lin1"}))["result"]["list"]
    assert rows[0]["orderStatus"] == "Filled" and Decimal(rows[0]["cumExecQty"]) == Decimal("0.01")
    positions = await bybit.fetch_positions(["BTC/USDT:USDT"])
    assert [(p["side"], p["contracts"]) for p in positions] == [("short", 0.01)]
    fee = Decimal(rows[0]["cumExecFee"])
    assert fee == Decimal(rows[0]["cumExecValue"]) * Decimal("0.00055")
    assert Decimal(venue.account("bybit")["futures"]["USDT"]) == Decimal(DEFAULT_FUNDS["USDT"]) - fee
    # Closing it flattens the position and books the PnL.
    await bybit.create_order("BTC/USDT:USDT", "market", "buy", 0.01, None, {"clientOrderId": "lin2"})
    assert venue.account("bybit")["positions"]["BTCUSDT"]["qty"] == "0.00"


async def test_bybit_rejections_and_resting_orders(venue: VenueEmulator, clients: Any) -> None:
    bybit = clients["bybit"]
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await bybit.create_order("BTC/USDT:USDT", "market", "sell", 100, None, {"clientOrderId": "big"})
    with pytest.raises(ccxt.BaseError, match="170140"):
        await bybit.create_order("BTC/USDT", "limit", "buy", 0.00001, 50000, {"clientOrderId": "small"})
    # A GTC bid far below the book rests, locks its quote, and cancelling gives it back.
    await bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 10000, {"clientOrderId": "rest"})
    assert venue.account("bybit")["locked"] == {"USDT": "100.00"}
    with pytest.raises(ccxt.BaseError, match="110072"):
        await bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 10000, {"clientOrderId": "rest"})
    await bybit.cancel_order(None, "BTC/USDT", {"orderLinkId": "rest"})
    account = venue.account("bybit")
    assert account["locked"] == {} and Decimal(account["spot"]["USDT"]) == Decimal(DEFAULT_FUNDS["USDT"])
    with pytest.raises(ccxt.OrderNotFound):
        await bybit.cancel_order(None, "BTC/USDT", {"orderLinkId": "rest"})


async def test_bybit_checks_keys_and_signatures(venue: VenueEmulator) -> None:
    wrong_secret = async_client("bybit", _creds("bybit", secret="not-the-secret"))
    unknown_key = async_client("bybit", _creds("bybit", key="nobody"))
    try:
        with pytest.raises(ccxt.AuthenticationError, match="10004"):
            await wrong_secret.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="10003"):
            await unknown_key.fetch_balance()
    finally:
        await wrong_secret.close()
        await unknown_key.close()


def test_the_matching_book_follows_the_replay(venue: VenueEmulator) -> None:
    data = venue.venue.data
    books = LiveBooks(data)
    recorded = data.binance_books[("spot", "BTCUSDT")]
    books.advance("binance", "spot", "BTCUSDT", 40)
    books.advance("binance", "spot", "BTCUSDT", 10)  # a replay starting over never moves it back
    events = [f.body for f in recorded.frames[:41]]
    expected = binance_book_at(recorded.snapshot, events, "spot", update_id=int(events[-1]["u"]))
    book = books.book("binance", "spot", "BTCUSDT")
    assert book is not None and book.top(20) == expected.top(20)
    linear = data.bybit_books[("linear", "BTCUSDT")]
    books.advance("bybit", "linear", "BTCUSDT", 25)
    expected_y = bybit_book_at([f.body for f in linear.frames], n=26, check_sequence=False)
    book_y = books.book("bybit", "linear", "BTCUSDT")
    assert book_y is not None and book_y.top(20) == expected_y.top(20)


async def test_the_control_api_reports_arrivals_requests_and_accounts(venue: VenueEmulator, clients: Any) -> None:
    import aiohttp

    await clients["bybit"].create_order("BTC/USDT", "market", "sell", 0.01, None, {"clientOrderId": "ctl1"})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{venue.url}/_control/arrivals") as resp:
            arrivals = await resp.json()
        async with session.get(f"{venue.url}/_control/requests?since=0") as resp:
            requests = await resp.json()
        async with session.get(f"{venue.url}/_control/accounts/bybit/{BYBIT_KEY}") as resp:
            account = await resp.json()
        async with session.get(f"{venue.url}/_control/accounts/bybit/nobody") as resp:
            assert resp.status == 404
    assert [(a["exchange"], a["clientOrderId"], a["symbol"]) for a in arrivals] == [("bybit", "ctl1", "BTCUSDT")]
    order_request = next(r for r in requests if r["path"].endswith("/v5/order/create"))
    assert order_request["wallNs"] == arrivals[0]["wallNs"]
    assert Decimal(account["spot"]["BTC"]) == Decimal("0.99")

"""Contract sizes: ccxt counts contracts on OKX swaps, the desk counts base units everywhere.

Markets are ccxt's own parse of the recorded OKX/Bitget instruments (see contract_markets).
The pure conversion is checked with hypothesis; the edges that use it (rules, precision,
order books from the stream and from REST, paper fills) against the recorded markets.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbsite.errors import ExchangeUnavailable, RiskRejected
from arbsite.redis_client import get_async_redis
from exchanges import connectivity, prices
from exchanges.contracts import ContractSizeUnknown, contract_size, from_contracts, to_contracts
from exchanges.market_data import MarketData
from exchanges.order_books import OrderBook, read_book
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import OrderStatus, PaperVenue, _CcxtMarkets, rules_from_market
from tests.exchanges.contract_markets import OKX_SWAP_RECENT, bitget_client, okx_client, seed
from tests.exchanges.stubs import FakeRestClient, StubStreamClient, eventually
from tests.trading_execution.helpers import recorded_markets

OKX_LINEAR = Instrument(Exchange.OKX, "BTCUSDT", MarketType.LINEAR)
OKX_SPOT = Instrument(Exchange.OKX, "BTCUSDT", MarketType.SPOT)
BITGET_LINEAR = Instrument(Exchange.BITGET, "BTCUSDT", MarketType.LINEAR)
BYBIT_LINEAR = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
BINANCE_LINEAR = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.LINEAR)
SWAP = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def okx(data_dir: Path) -> Any:
    """BTC-USDT-SWAP as recorded in 2022: ctVal 0.01 BTC, whole contracts (lotSz = minSz = 1)."""
    return okx_client(data_dir)


@pytest.fixture(scope="module")
def okx_recent(data_dir: Path) -> Any:
    """BTC-USDT-SWAP, recent field set: ctVal 0.01 BTC, lots of 0.01 contract."""
    return okx_client(data_dir, OKX_SWAP_RECENT)


@pytest.fixture(scope="module")
def bitget(data_dir: Path) -> Any:
    return bitget_client(data_dir)


# --------------------------------------------------------------------------- the pure conversion

sizes = st.decimals(min_value=D("0.000001"), max_value=D("1000"), places=6, allow_nan=False, allow_infinity=False)
base_qtys = st.decimals(min_value=D(0), max_value=D("100000"), places=8, allow_nan=False, allow_infinity=False)
contract_counts = st.decimals(min_value=D(0), max_value=D("10000000"), places=4, allow_nan=False,
                              allow_infinity=False)


@given(contracts=contract_counts, size=sizes)
def test_contracts_round_trip_exactly(contracts: D, size: D) -> None:
    assert to_contracts(from_contracts(contracts, size), size) == contracts


@given(qty=base_qtys, size=sizes)
def test_base_to_contracts_never_rounds_up(qty: D, size: D) -> None:
    contracts = to_contracts(qty, size)
    assert from_contracts(contracts, size) <= qty
    # ...and loses at most the last digit of a 60-digit division, nothing a lot could hold
    assert qty - from_contracts(contracts, size) < size * D("1e-50")


@given(qty=base_qtys)
def test_a_contract_size_of_one_changes_nothing(qty: D) -> None:
    assert to_contracts(qty, D(1)) == qty == from_contracts(qty, D(1))


def test_the_okx_examples() -> None:
    assert to_contracts(D("0.05"), D("0.01")) == 5
    assert to_contracts(D("0.015"), D("0.01")) == D("1.5")  # whole lots are ccxt's truncation's job
    assert from_contracts(D(3), D("0.01")) == D("0.03")
    assert to_contracts(D("0.005"), D("0.01")) == D("0.5")


def test_contract_size_comes_from_ccxts_market(okx: Any, bitget: Any) -> None:
    assert contract_size(None) == 1
    assert contract_size(okx.markets["BTC/USDT"]) == 1  # spot: contractSize None
    assert contract_size(okx.markets[SWAP]) == D("0.01")
    assert contract_size(bitget.markets[SWAP]) == 1  # ccxt's Bitget USDT-M amounts are base units
    broken = {**okx.markets[SWAP], "contractSize": None}  # derived: the field removed
    with pytest.raises(ContractSizeUnknown):
        contract_size(broken)
    with pytest.raises(ContractSizeUnknown):
        contract_size({**okx.markets[SWAP], "contractSize": 0})
    with pytest.raises(ContractSizeUnknown):
        to_contracts(D(1), D(0))
    with pytest.raises(ContractSizeUnknown):
        from_contracts(D(1), D(-1))


# --------------------------------------------------------------------------- rules and precision


def test_rules_are_in_base_units(okx: Any, okx_recent: Any, bitget: Any, data_dir: Path) -> None:
    rules = rules_from_market(OKX_LINEAR, okx.markets[SWAP])
    assert (rules.contract_size, rules.min_amount, rules.min_notional) == (D("0.01"), D("0.01"), None)
    recent = rules_from_market(OKX_LINEAR, okx_recent.markets[SWAP])
    assert (recent.contract_size, recent.min_amount) == (D("0.01"), D("0.0001"))  # minSz 0.01 contract
    spot = rules_from_market(OKX_SPOT, okx.markets["BTC/USDT"])
    assert (spot.contract_size, spot.min_amount) == (1, D("0.00001"))
    # Bitget USDT-M: minTradeNum 0.001 BTC, minTradeUSDT 5 (quote), contractSize 1 in ccxt
    got = rules_from_market(BITGET_LINEAR, bitget.markets[SWAP])
    assert (got.contract_size, got.min_amount, got.min_notional) == (1, D("0.001"), D(5))
    # Binance USD-M and Bybit linear: contractSize 1, minimums as recorded
    recorded = recorded_markets(data_dir)
    binance = rules_from_market(BINANCE_LINEAR, recorded[Exchange.BINANCE][0][SWAP])
    bybit = rules_from_market(BYBIT_LINEAR, recorded[Exchange.BYBIT][0][SWAP])
    assert binance.contract_size == bybit.contract_size == 1
    assert binance.min_amount == D(str(recorded[Exchange.BINANCE][0][SWAP]["limits"]["amount"]["min"]))
    assert bybit.min_amount == D(str(recorded[Exchange.BYBIT][0][SWAP]["limits"]["amount"]["min"]))


def test_a_contract_market_without_a_size_is_not_traded(okx: Any) -> None:
    with pytest.raises(ExchangeUnavailable, match="without a contract size"):
        rules_from_market(OKX_LINEAR, {**okx.markets[SWAP], "contractSize": None})


def _markets(client: Any, exchange: Exchange) -> _CcxtMarkets:
    return _CcxtMarkets(exchange, client)


def test_amount_precision_counts_whole_lots_of_contracts(okx: Any, okx_recent: Any, bitget: Any) -> None:
    whole, fractional = _markets(okx, Exchange.OKX), _markets(okx_recent, Exchange.OKX)
    assert whole.amount(OKX_LINEAR, D("0.05")) == D("0.05")
    assert whole.amount(OKX_LINEAR, D("0.015")) == D("0.01")  # 1.5 contracts -> 1 (truncated, never 2)
    assert whole.amount(OKX_LINEAR, D("0.0199")) == D("0.01")
    assert whole.amount(OKX_LINEAR, D("0.005")) == 0  # half a contract
    assert fractional.amount(OKX_LINEAR, D("0.015")) == D("0.015")  # 1.5 contracts is a lot multiple
    assert fractional.amount(OKX_LINEAR, D("0.000259")) == D("0.0002")  # 0.0259 contracts -> 0.02
    assert fractional.amount(OKX_LINEAR, D("0.00005")) == 0
    assert whole.amount(OKX_SPOT, D("0.0123456789")) == D("0.01234567")  # spot: base units as before
    assert _markets(bitget, Exchange.BITGET).amount(BITGET_LINEAR, D("0.0159")) == D("0.015")


def test_amount_precision_needs_loaded_markets() -> None:
    class MockUnloadedClient:
        """ccxt before load_markets: markets is None."""

        markets = None

    with pytest.raises(ExchangeUnavailable, match="markets not loaded"):
        _markets(MockUnloadedClient(), Exchange.OKX).amount(OKX_LINEAR, D(1))


@settings(max_examples=300, deadline=None)
@given(qty=st.decimals(min_value=D(0), max_value=D(50), places=7, allow_nan=False, allow_infinity=False))
def test_precision_never_exceeds_the_qty_and_keeps_every_whole_lot(okx: Any, okx_recent: Any, qty: D) -> None:
    """Through ccxt's own amount_to_precision: a multiple of one lot, <= qty, less than a lot below it."""
    for client, lot in ((okx, D("0.01")), (okx_recent, D("0.0001"))):  # lot in base: lotSz x ctVal
        got = _markets(client, Exchange.OKX).amount(OKX_LINEAR, qty)
        assert got <= qty
        assert got % lot == 0
        assert qty - got < lot


# --------------------------------------------------------------------------- order books

def ccxt_book(bids: list[list[Any]], asks: list[list[Any]]) -> dict[str, Any]:
    """ccxt's unified order book shape; the levels are test values (sizes in the market's amount unit)."""
    return {"bids": bids, "asks": asks, "timestamp": 1746947317402, "nonce": None}


def test_a_contract_books_sizes_become_base_units(okx: Any, okx_recent: Any, bitget: Any) -> None:
    raw = ccxt_book([[103698.8, 5.0], [103698.7, 120.0]], [[103698.9, 3.0], [103699.0, 1.0]])
    book = OrderBook.from_ccxt(raw, OKX_LINEAR, okx.markets[SWAP], okx.precisionMode)
    assert book.bids == [(D("103698.8"), D("0.05")), (D("103698.7"), D("1.2"))]
    assert book.asks == [(D("103698.9"), D("0.03")), (D("103699"), D("0.01"))]
    assert book.to_contract()["bids"][1] == ["103698.7", "1.2"]
    fractional = OrderBook.from_ccxt(ccxt_book([[1.0, 0.37]], [[2.0, 1.01]]), OKX_LINEAR,
                                     okx_recent.markets[SWAP], okx_recent.precisionMode)
    assert (fractional.bids[0][1], fractional.asks[0][1]) == (D("0.0037"), D("0.0101"))
    # spot, Bitget USDT-M and no market at all: sizes as ccxt gave them
    for instrument, market in ((OKX_SPOT, okx.markets["BTC/USDT"]), (BITGET_LINEAR, bitget.markets[SWAP]),
                               (OKX_LINEAR, None)):
        same = OrderBook.from_ccxt(ccxt_book([[1.0, 0.5]], [[2.0, 3.0]]), instrument, market)
        assert (same.bids[0][1], same.asks[0][1]) == (D("0.5"), D(3))


def test_a_contract_market_without_a_size_yields_no_book(okx: Any) -> None:
    with pytest.raises(ContractSizeUnknown):
        OrderBook.from_ccxt(ccxt_book([[1.0, 1.0]], [[2.0, 1.0]]), OKX_LINEAR,
                            {**okx.markets[SWAP], "contractSize": None})


def recorded_bybit_levels(data_dir: Path, depth: int = 20) -> tuple[list[list[str]], list[list[str]]]:
    path = data_dir / "bybit/orderbook/linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        data = json.loads(fh.readline())["msg"]["data"]
    return data["b"][:depth], data["a"][:depth]


def as_okx_contracts(levels: list[list[str]]) -> list[list[float]]:
    """Derived: a recorded base-unit book's sizes expressed in OKX BTC-USDT-SWAP contracts (÷ 0.01).

    Bybit's sizes step by 0.001 BTC = 0.1 contract: a whole multiple of the recent fixture's
    lot (0.01 contract), so the conversion back is exact there.
    """
    return [[float(p), float(D(s) / D("0.01"))] for p, s in levels]


async def test_the_stream_stores_base_units(okx_recent: Any, data_dir: Path) -> None:
    okx = okx_recent
    bids, asks = recorded_bybit_levels(data_dir)
    seed(Exchange.OKX, okx)
    clients: list[StubStreamClient] = []

    def factory(exchange: Exchange) -> StubStreamClient:
        client = StubStreamClient(exchange.value)
        client.markets = okx.markets
        clients.append(client)
        return client

    async def publish(event: str, data: dict[str, Any]) -> None:
        return None

    redis = get_async_redis()
    service = MarketData(factory, publish, redis=redis, min_interval_ms=0, heartbeat_seconds=0.05,
                         refresh_seconds=0.05, instruments=lambda: {OKX_LINEAR})
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await eventually(lambda: clients)
        clients[0].push(SWAP, ccxt_book(as_okx_contracts(bids), as_okx_contracts(asks)))
        book = await eventually(lambda: read_book(OKX_LINEAR))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()
    assert book.bids == [(D(p), D(s)) for p, s in bids]
    assert book.asks == [(D(p), D(s)) for p, s in asks]


@pytest.mark.django_db
async def test_a_rest_book_is_stored_in_base_units(okx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(Exchange.OKX, okx)
    raw = ccxt_book([[103698.8, 7.0]], [[103698.9, 2.0]])
    monkeypatch.setattr(connectivity, "async_client",
                        lambda exchange, credentials=None: FakeRestClient(str(exchange), {SWAP: raw}))
    (book,) = await prices.fetch_books([OKX_LINEAR])
    assert isinstance(book, OrderBook)
    assert (book.bids, book.asks) == ([(D("103698.8"), D("0.07"))], [(D("103698.9"), D("0.02"))])
    stored = read_book(OKX_LINEAR)
    assert stored is not None and stored.bids == book.bids


# --------------------------------------------------------------------------- paper fills


@pytest.mark.django_db
async def test_paper_fills_an_okx_swap_in_base_units(okx_recent: Any, data_dir: Path, settings: Any) -> None:
    """A recorded book's sizes as OKX contracts: the fill, its fee and the position are in BTC."""
    okx = okx_recent
    settings.PAPER_LATENCY_MS = 0
    settings.PAPER_STARTING_FUNDS = {"USDT": "100000"}
    seed(Exchange.OKX, okx)
    bids, asks = recorded_bybit_levels(data_dir)
    from exchanges.order_books import write_book

    write_book(OrderBook.from_ccxt(ccxt_book(as_okx_contracts(bids), as_okx_contracts(asks)), OKX_LINEAR,
                                   okx.markets[SWAP], okx.precisionMode))
    venue = PaperVenue(Exchange.OKX)
    try:
        # 1.5999 contracts: truncated to 1.59 (lots of 0.01 contract), never rounded up
        result = await venue.create_order(OKX_LINEAR, "buy", D("0.015999"), client_order_id="okx-paper-1")
        positions = await venue.fetch_positions()
        with pytest.raises(RiskRejected, match=r"less than one lot.*contracts of 0\.01 BTC"):
            await venue.create_order(OKX_LINEAR, "buy", D("0.00009"), client_order_id="okx-paper-2")
    finally:
        await venue.close()
    best_ask = D(asks[0][0])
    assert D(asks[0][1]) >= D("0.0159")  # the recorded best level holds the whole order
    assert result.status is OrderStatus.FILLED
    assert (result.amount, result.filled, result.average) == (D("0.0159"), D("0.0159"), best_ask)
    assert result.fee == best_ask * D("0.0159") * D(str(okx.markets[SWAP]["taker"]))
    assert positions == [{"symbol": "BTCUSDT", "qty": D("0.0159"), "entryPrice": best_ask, "paper": True}]

"""Emulator faults through real ccxt: a 429 storm, a 418 ban, a stalled stream, an abnormal jump in a replayed book.

Each must end in the right pause and alert: retries then an open breaker, a halted exchange
that is not retried, stale-book rejections, a paused pair.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from arbsite.errors import ApiError, ExchangeUnavailable, RateLimited, RiskRejected
from exchanges.order_books import OrderBook, awrite_book, now_ms
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import LiveVenue
from tests.risk.conftest import intent
from tests.risk.helpers import eventually_sync
from tests.venue import replay
from tests.venue.server import VenueEmulator
from trading.risk import check_order, record_result, trading_state
from trading.risk.gate import global_limits_row

BINANCE_SPOT = Instrument(Exchange.BINANCE, "BTCUSDT", MarketType.SPOT)
BYBIT_LINEAR = Instrument(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR)
BYBIT_STREAM = "bybit/orderbook/linear_BTCUSDT_2026-08-09_ws_orderbook200.jsonl.gz"
MOCK_KEYS = {"apiKey": "MOCK-KEY", "secret": "MOCK-SECRET"}  # the emulator does not check signatures


def load_public_markets() -> None:
    """Markets from the emulator's public exchangeInfo, as the market-data process would have them.

    (A keyed ccxt client would also ask for private currency endpoints the emulator does not serve.)
    """
    from exchanges import connectivity

    async def go() -> None:
        client = connectivity.async_client("binance")
        try:
            await connectivity.load_markets(client, Exchange.BINANCE)
        finally:
            await client.close()

    asyncio.run(go())


def place(n: int) -> Any:
    """One live limit order on Binance spot through LiveVenue -> ccxt -> the emulator."""

    async def go() -> Any:
        venue = LiveVenue("binance", credentials=MOCK_KEYS)
        try:
            return await venue.create_order(BINANCE_SPOT, "buy", D("0.001"), order_type="limit", price=D("60000"),
                                            client_order_id=f"fault{n}")
        except ApiError as exc:
            return exc
        finally:
            await venue.close()

    return asyncio.run(go())


def limits(**values: Any) -> None:
    row = global_limits_row()
    for k, v in values.items():
        setattr(row, k, v)
    row.save()


@pytest.mark.django_db
def test_a_429_storm_is_retried_with_backoff_then_opens_the_exchange_breaker(
    venue: VenueEmulator, books: Any, settings: Any, published: Any
) -> None:
    from trading.risk_models import Alert, BreakerState

    settings.RISK_RETRY_ATTEMPTS, settings.RISK_RETRY_BASE_SECONDS = 3, 0.001
    limits(breaker_consecutive_failures=2)
    load_public_markets()
    venue.inject("binance", "http_status", status=429, path="/api/v3/order", count=None)
    for n in range(2):
        i = intent(client_order_id=f"fault{n}")
        check_order(i)
        result = place(n)
        assert isinstance(result, RateLimited)
        record_result(i, filled=D(0), avg_price=None, ok=False, error_code=result.error_code,
                      message=str(result.detail))
    assert len(venue.requests_to("/api/v3/order")) == 6  # three tries per order, then it gives up
    assert trading_state(exchange="binance").state == "active"  # a 429 is not a ban
    assert BreakerState.objects.get(scope="exchange:binance").status == "open"
    assert Alert.objects.filter(exchange="binance", risk_check="breaker", severity="error").exists()
    assert any(a.get("exchange") == "binance" and "circuit breaker OPEN" in a["message"] for a in published.alerts())
    with pytest.raises(RiskRejected, match="circuit breaker open for exchange:binance"):
        check_order(intent(client_order_id="after"))


@pytest.mark.django_db(transaction=True)
def test_a_418_halts_the_exchange_and_alerts_instead_of_retrying(
    venue: VenueEmulator, books: Any, published: Any
) -> None:
    from trading.risk_models import Alert

    load_public_markets()
    venue.inject("binance", "http_status", status=418, path="/api/v3/order", count=None)
    first = place(0)
    assert isinstance(first, ExchangeUnavailable) and "ban" in str(first.detail)
    assert len(venue.requests_to("/api/v3/order")) == 1  # never retried
    second = place(1)
    assert isinstance(second, ExchangeUnavailable)
    assert len(venue.requests_to("/api/v3/order")) == 1  # halted: not even sent
    state = trading_state(exchange="binance")
    assert state.state == "halted" and "418" in state.reason
    assert Alert.objects.filter(exchange="binance", severity="critical", risk_check="throttle").exists()
    assert any(a["severity"] == "critical" and a.get("exchange") == "binance" for a in published.alerts())
    with pytest.raises(RiskRejected, match="exchange:binance is halted"):
        check_order(intent(purpose="flatten"))


@pytest.mark.django_db
def test_a_stalled_stream_makes_the_book_stale_and_orders_are_refused(
    venue: VenueEmulator, pair: Any, published: Any
) -> None:
    from exchanges.connectivity import async_client
    from trading.risk_models import Alert, RiskLimits

    RiskLimits.objects.create(pair=pair, max_book_age_seconds=D("0.3"))
    venue.inject("bybit", "stall", stream="orderbook.200.BTCUSDT", after=5)

    async def stream_until_stalled() -> OrderBook:
        client = async_client("bybit")
        book = None
        try:
            while True:  # what the market-data process does: every book to the cache
                try:
                    raw = await asyncio.wait_for(client.watch_order_book("BTC/USDT:USDT", 200), timeout=1.0)
                except TimeoutError:
                    assert book is not None
                    return book
                book = OrderBook.from_ccxt(raw, BYBIT_LINEAR)
                await awrite_book(book)
        finally:
            await client.close()

    last = asyncio.run(stream_until_stalled())
    ask = last.best_ask
    assert ask is not None
    order = intent(exchange="bybit", type="linear", side="buy", expected_price=ask, executable_price=ask,
                   pair_id=pair.id, client_order_id="stall", balances={"USDT": D("1e6")})

    def refused() -> str | None:
        try:
            check_order(order)
        except RiskRejected as exc:
            return str(exc.detail)
        return None

    reason = eventually_sync(refused)
    assert reason.startswith("stale order book for bybit linear BTCUSDT")
    assert Alert.objects.filter(risk_check="stale_book", pair_id=pair.id).exists()
    assert any(a.get("check") == "stale_book" for a in published.alerts())


@pytest.mark.django_db(transaction=True)
def test_an_abnormal_jump_in_a_replayed_book_pauses_the_pair(data_dir: Path, pair: Any, published: Any) -> None:
    from trading.risk.prices import AbnormalMoveWatcher
    from trading.risk_models import Alert

    limits(abnormal_move_percent=D("3"), abnormal_move_window_seconds=10)
    start = now_ms()
    replayed: list[OrderBook] = []
    for n, book in enumerate(replay.bybit_books(replay.read_messages(data_dir / BYBIT_STREAM))):
        if n >= 40:
            break
        bids, asks = book.top(20)
        replayed.append(OrderBook(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR, bids, asks, ts=start + n * 50,
                                  received_ts=start + n * 50))
    last = replayed[-1]
    # The fault: the next book jumps 5 % (a stub update on top of the replay).
    jumped = OrderBook(Exchange.BYBIT, "BTCUSDT", MarketType.LINEAR,
                       [(p * D("1.05"), q) for p, q in last.bids], [(p * D("1.05"), q) for p, q in last.asks],
                       ts=last.received_ts + 50, received_ts=last.received_ts + 50)
    watcher = AbnormalMoveWatcher()

    async def feed(books: list[OrderBook]) -> None:
        for b in books:
            await watcher(b)
        await asyncio.gather(*watcher.tasks)

    asyncio.run(feed(replayed))
    assert trading_state(pair.id).state == "active"  # the real replay is not abnormal
    asyncio.run(feed([jumped]))
    state = trading_state(pair.id)
    assert state.state == "reducing" and state.reason.startswith("abnormal move: bybit:linear:BTCUSDT moved 5")
    assert Alert.objects.filter(pair_id=pair.id, risk_check="abnormal_move", severity="error").exists()
    assert any(a.get("pairId") == pair.id and "abnormal move" in a["message"] for a in published.alerts())
    with pytest.raises(RiskRejected, match="reducing-only"):
        check_order(intent(pair_id=pair.id, balances={"USDT": D("1e6")}))

"""Kept venues follow the process's market cache: a change at the exchange is seen after the max age.

The change is a recorded one: OKX BTC-USDT-SWAP traded in whole contracts in 2022 (lotSz = minSz
= 1 contract of 0.01 BTC) and in hundredths of a contract in the recent instruments (lotSz =
minSz = 0.01). Real ccxt.pro OKX clients (the venues' own) parse the recorded instrument
responses served by `MockOkxInstruments` instead of HTTP; the cache's clock is moved by the
`clock` fixture, never by sleeping. Costs are counted, not timed: instrument requests (the I/O)
and ccxt `set_markets` calls (the costly rebuild) per client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest

from arbsite.errors import ExchangeUnavailable
from exchanges import connectivity
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import PaperVenue
from tests.exchanges.contract_markets import OKX_SPOT_2022, OKX_SWAP_2022, OKX_SWAP_RECENT

OKX_LINEAR = Instrument(Exchange.OKX, "BTCUSDT", MarketType.LINEAR)
CALLS = 200  # uses of a kept venue between two changes: none of them may cost a request or a set_markets


class MockOkxInstruments:
    """MOCK OKX public REST: `/public/instruments` from the recordings; `error` makes every request raise it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.swap_file = OKX_SWAP_2022
        self.error: Exception | None = None
        self.requests = 0

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.requests += 1
        if self.error is not None:
            raise self.error
        parts = urlsplit(url)
        assert parts.path.endswith("/public/instruments"), parts.path
        name = {"SWAP": self.swap_file, "SPOT": OKX_SPOT_2022}[parse_qs(parts.query)["instType"][0]]
        return json.loads((self.data_dir / name).read_text())


class Clock:
    """The market cache's clock: real monotonic time plus what the test lets pass."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(connectivity, "_now", moved)
    return moved


@pytest.fixture
def exchange(data_dir: Path, settings: Any) -> Iterator[MockOkxInstruments]:
    settings.EXCHANGE_VENUE_URL = ""  # the mock answers before any URL is used
    yield MockOkxInstruments(data_dir)


class Kept:
    """A paper venue as a worker keeps it, its client's HTTP routed to the mock, set_markets counted."""

    def __init__(self, mock: MockOkxInstruments) -> None:
        self.venue = PaperVenue(Exchange.OKX)
        client = self.venue.client
        client.fetch = mock.fetch
        self.set_markets_calls = 0
        real_set_markets = client.set_markets

        def counted(markets: Any, currencies: Any = None) -> Any:
            self.set_markets_calls += 1
            return real_set_markets(markets, currencies)

        client.set_markets = counted

    async def min_amount(self) -> D | None:
        return (await self.venue.rules(OKX_LINEAR)).min_amount

    def amount(self, qty: str) -> D:
        return self.venue.amount_to_precision(OKX_LINEAR, D(qty))

    async def use(self, times: int = CALLS) -> None:
        """What execution does with a venue per order: rules, then amount and price precision."""
        for _ in range(times):
            await self.venue.rules(OKX_LINEAR)
            self.venue.amount_to_precision(OKX_LINEAR, D("0.05"))
            self.venue.price_to_precision(OKX_LINEAR, D("103698.87"))

    async def close(self) -> None:
        await self.venue.close()


async def test_a_kept_venue_sees_a_precision_change_after_the_max_age(exchange: MockOkxInstruments,
                                                                     clock: Clock) -> None:
    first = Kept(exchange)
    try:
        assert await first.min_amount() == D("0.01")  # minSz 1 contract = 0.01 BTC
        assert first.amount("0.015") == D("0.01")  # 1.5 contracts -> 1 whole contract
        assert exchange.requests == 2  # SPOT and SWAP instruments, once
        assert first.set_markets_calls == 1  # ccxt's own, while loading
        second = Kept(exchange)  # made from the fresh cache
        try:
            await first.use()
            await second.use()
            assert (exchange.requests, first.set_markets_calls, second.set_markets_calls) == (2, 1, 0)

            exchange.swap_file = OKX_SWAP_RECENT  # the exchange changes its lots
            clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS - 1)
            assert await second.min_amount() == D("0.01")  # not yet looked at: fresh is fresh
            assert exchange.requests == 2

            clock.advance(2)  # past the max age: the next use reloads, once
            assert await second.min_amount() == D("0.0001")  # minSz 0.01 contract
            assert second.amount("0.015") == D("0.015") and second.amount("0.000259") == D("0.0002")
            assert exchange.requests == 4
            # The venue made before the refresh: its precision follows without a request of its own,
            # even before its next rules() (precision helpers pick up the cache's newer markets).
            assert first.amount("0.015") == D("0.015")
            assert await first.min_amount() == D("0.0001")
            assert (exchange.requests, first.set_markets_calls, second.set_markets_calls) == (4, 2, 1)

            await first.use()
            await second.use()
            assert (exchange.requests, first.set_markets_calls, second.set_markets_calls) == (4, 2, 1)
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_reload_that_finds_nothing_changed_hands_nothing_over(exchange: MockOkxInstruments,
                                                                      clock: Clock) -> None:
    first, second = Kept(exchange), Kept(exchange)
    try:
        await first.use(1)
        await second.use(1)
        assert (exchange.requests, first.set_markets_calls, second.set_markets_calls) == (2, 1, 1)
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS + 1)
        await first.use()  # reloads (ccxt rebuilds its own markets), finds them equal
        await second.use()  # keeps what it holds: same version, younger
        assert (exchange.requests, first.set_markets_calls, second.set_markets_calls) == (4, 2, 1)
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS - 1)  # the equal reload counts as fresh
        await second.use()
        assert exchange.requests == 4
    finally:
        await first.close()
        await second.close()


async def test_stale_markets_are_reloaded_once_for_every_waiting_venue(exchange: MockOkxInstruments,
                                                                       clock: Clock) -> None:
    kept = [Kept(exchange) for _ in range(4)]
    try:
        await kept[0].use(1)
        exchange.swap_file = OKX_SWAP_RECENT
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS + 1)
        before = exchange.requests
        found = await asyncio.gather(*(k.min_amount() for k in kept))
        assert found == [D("0.0001")] * 4
        assert exchange.requests - before == 2  # one reload (SPOT + SWAP) under the lock
    finally:
        await asyncio.gather(*(k.close() for k in kept))


async def test_a_failed_refresh_keeps_the_previous_markets_and_waits_before_trying_again(
        exchange: MockOkxInstruments, clock: Clock) -> None:
    kept = Kept(exchange)
    try:
        await kept.use(1)
        exchange.swap_file = OKX_SWAP_RECENT
        exchange.error = ccxt.NetworkError("okx GET /api/v5/public/instruments: connection reset")
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS + 1)
        before = exchange.requests
        assert await kept.min_amount() == D("0.01")  # the previous markets, not a refused order
        await kept.use()
        assert exchange.requests - before == 1  # one attempt, then no hammering
        clock.advance(connectivity.MARKETS_RETRY_SECONDS + 1)
        exchange.error = None
        assert await kept.min_amount() == D("0.0001")  # tried again, and the change arrives
    finally:
        await kept.close()


async def test_without_any_markets_a_failed_load_is_exchange_unavailable(exchange: MockOkxInstruments) -> None:
    exchange.error = ccxt.RequestTimeout("okx timed out")
    kept = Kept(exchange)
    try:
        with pytest.raises(ExchangeUnavailable, match="okx cannot be reached"):
            await kept.min_amount()
        with pytest.raises(ExchangeUnavailable, match="markets not loaded"):
            kept.amount("0.01")
    finally:
        await kept.close()


async def test_a_keeper_reloads_ahead_of_the_max_age_so_no_order_waits(exchange: MockOkxInstruments,
                                                                       clock: Clock) -> None:
    kept = Kept(exchange)
    client = kept.venue.client
    try:
        assert await connectivity.refresh_markets(client, Exchange.OKX, within=300)  # none yet: loads
        assert exchange.requests == 2
        assert not await connectivity.refresh_markets(client, Exchange.OKX, within=300)  # fresh: no I/O
        exchange.swap_file = OKX_SWAP_RECENT
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS - 301)
        assert not await connectivity.refresh_markets(client, Exchange.OKX, within=300)
        assert exchange.requests == 2
        clock.advance(2)  # within 5 minutes of the max age: the keeper reloads now...
        keepers = [connectivity.refresh_markets(client, Exchange.OKX, within=300) for _ in range(3)]
        assert sorted(await asyncio.gather(*keepers)) == [False, False, True]  # ...once
        assert exchange.requests == 4
        requests = exchange.requests
        assert await kept.min_amount() == D("0.0001")  # the order's path finds them fresh: no request
        assert exchange.requests == requests
    finally:
        await kept.close()


async def test_market_data_reloads_ahead_and_its_streams_follow(exchange: MockOkxInstruments, clock: Clock) -> None:
    """Books are sized with the markets (contract sizes, lots): the stream process refreshes them too."""
    from arbsite.redis_client import get_async_redis
    from exchanges.market_data import MarketData

    kept = Kept(exchange)
    redis = get_async_redis()

    async def publish(event: str, data: dict[str, Any]) -> None:
        return None

    service = MarketData(lambda _: kept.venue.client, publish, redis=redis, instruments=lambda: set())
    try:
        client = await service.client_for(Exchange.OKX)
        assert connectivity.market_for(client.markets, OKX_LINEAR)["limits"]["amount"]["min"] == 1
        assert exchange.requests == 2
        await service.refresh_markets()  # fresh: nothing asked
        assert exchange.requests == 2
        exchange.swap_file = OKX_SWAP_RECENT
        clock.advance(connectivity.MARKETS_MAX_AGE_SECONDS - 120)  # inside the look-ahead window
        await service.refresh_markets()
        assert exchange.requests == 4
        client = await service.client_for(Exchange.OKX)  # what every stream update does: no I/O
        assert connectivity.market_for(client.markets, OKX_LINEAR)["limits"]["amount"]["min"] == 0.01
        assert exchange.requests == 4
    finally:
        await kept.close()
        await redis.aclose()

"""Kept venues (`exchanges.sessions`): one ccxt client per exchange for a worker's life, balances kept warm.

Against the venue emulator with the live path (signed requests): what reached the exchange is read
from the emulator's own request log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from arbsite.errors import ExchangeUnavailable
from exchanges.sessions import VenueSession
from exchanges.symbols import Exchange
from exchanges.venues import LiveVenue, OrderType, PaperVenue, Side
from tests.live_execution.conftest import BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC
from tests.venue.server import VenueEmulator
from trading.execution import create_execution, execute
from trading.execution_models import ExecutionState

pytestmark = [pytest.mark.django_db, pytest.mark.emulator, pytest.mark.recorded]

BALANCE_PATHS = ("/api/v3/account", "/v5/account/wallet-balance")


@pytest.fixture
def session() -> Iterator[VenueSession]:
    kept = VenueSession()
    yield kept
    kept.close()


def balance_reads(emulator: VenueEmulator) -> int:
    return sum(len(emulator.requests_to(path)) for path in BALANCE_PATHS)


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_venue_is_kept_and_reopened_when_its_keys_change(emulator: VenueEmulator, session: VenueSession,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = session.venue(Exchange.BINANCE)
    assert isinstance(first.inner, LiveVenue) and not first.paper
    assert session.venue("binance") is first  # same client, same connections, markets loaded once
    monkeypatch.setenv("BINANCE_API_KEY", "emu-binance-rotated")
    rotated = session.venue(Exchange.BINANCE)
    assert rotated is not first and rotated.account != first.account
    assert session.run(first.fetch_balance())["USDT"] > 0  # retired, not closed under a runner still on it
    monkeypatch.delenv("BINANCE_API_KEY")
    monkeypatch.delenv("BINANCE_API_SECRET")
    paper = session.venue(Exchange.BINANCE)  # keys removed: paper from now on, never the old account
    assert isinstance(paper.inner, PaperVenue) and paper.paper


def test_a_standing_reading_spares_the_rest_call_until_an_order_voids_it(emulator: VenueEmulator,
                                                                        session: VenueSession, settings: Any) -> None:
    settings.BALANCE_REFRESH_DELAY_SECONDS = 30  # no background refresh within this test
    venue = session.venue(Exchange.BINANCE)
    first = session.run(session.recent_balance(venue))
    assert first["USDT"] > 0 and balance_reads(emulator) == 1
    again = session.run(session.recent_balance(venue))
    assert again == first and balance_reads(emulator) == 1  # the reading stood in for a REST call
    result = session.run(venue.create_order(BINANCE_SPOT_BTC, Side.BUY, Decimal("0.01"), order_type=OrderType.MARKET,
                                            client_order_id="keptvenuetest1"))
    assert result.filled == Decimal("0.01")
    after = session.run(session.recent_balance(venue))  # voided by the order: read again
    assert balance_reads(emulator) == 2
    # Bought 0.01 BTC (the fee is taken in BTC) and paid USDT for it.
    assert first["BTC"] < after["BTC"] <= first["BTC"] + Decimal("0.01") and after["USDT"] < first["USDT"]


def test_an_order_is_followed_by_a_background_refresh(emulator: VenueEmulator, session: VenueSession,
                                                      settings: Any) -> None:
    settings.BALANCE_REFRESH_DELAY_SECONDS = 0.05
    venue = session.venue(Exchange.BYBIT)
    session.run(venue.create_order(BYBIT_LINEAR_BTC, Side.BUY, Decimal("0.01"), order_type=OrderType.MARKET,
                                   client_order_id="keptvenuetest2"))
    wait_until(lambda: balance_reads(emulator) >= 1)
    reads = balance_reads(emulator)
    session.run(session.recent_balance(venue))  # the refresh's reading stands: no further read
    assert balance_reads(emulator) == reads


def test_an_unreachable_venue_fails_the_balance_loudly(emulator: VenueEmulator, session: VenueSession,
                                                       settings: Any) -> None:
    settings.RISK_RETRY_ATTEMPTS = 1
    venue = session.venue(Exchange.BINANCE)
    emulator.inject("binance", "http_status", status=503, count=None)
    with pytest.raises(ExchangeUnavailable):
        session.run(session.recent_balance(venue))


def test_the_second_execution_sends_without_waiting_for_a_balance_read(emulator: VenueEmulator, pair: Any,
                                                                       published: Any, settings: Any) -> None:
    """The production path (`execute` without a factory) keeps its venues between executions."""
    settings.BALANCE_REFRESH_DELAY_SECONDS = 0.05
    first = execute(create_execution(pair).id)
    assert first is not None and first.state == ExecutionState.COMPLETED, first.error_message
    wait_until(lambda: balance_reads(emulator) >= 4)  # both accounts: read for the gate, then refreshed
    before = len(emulator.requests)
    second = execute(create_execution(pair).id)
    assert second is not None and second.state == ExecutionState.COMPLETED, second.error_message
    # Between the two executions' orders no balance was read on the critical path: the order
    # requests follow each other directly in the emulator's log.
    log = [path for _, path, _ in emulator.requests[before:]]
    assert sorted(path.rsplit("/", 2)[-1] for path in log[:2]) == ["create", "order"], log
    assert not any(path.endswith(BALANCE_PATHS) for path in log[:2])


def test_a_starting_worker_warms_its_venues_and_reports_what_it_cannot_reach(emulator: VenueEmulator,
                                                                              settings: Any) -> None:
    from exchanges.sessions import shared_session, warm_up

    settings.RISK_RETRY_ATTEMPTS = 1
    emulator.inject("bybit", "http_status", status=503, count=None)
    failed = warm_up()
    assert len(failed) == 1 and failed[0].startswith("bybit: ExchangeUnavailable"), failed
    session = shared_session()
    binance = session.venue(Exchange.BINANCE)
    assert binance.inner.client.markets  # markets loaded before any order
    reads = balance_reads(emulator)
    session.run(session.recent_balance(binance))  # the warm-up's reading stands
    assert balance_reads(emulator) == reads


def test_threads_asking_at_once_get_the_same_venue(emulator: VenueEmulator, session: VenueSession) -> None:
    """A worker's warm-up thread and its first task must not each open (and close) their own."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def ask(_: int) -> int:
        try:
            return id(session.venue(Exchange.BINANCE))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert len(set(pool.map(ask, range(8)))) == 1


def test_the_keeper_backs_off_an_unreachable_venue_and_keeps_the_others_warm(
        emulator: VenueEmulator, session: VenueSession, settings: Any) -> None:
    settings.RISK_BALANCE_MAX_AGE_SECONDS = 0.9  # the keeper runs every 0.3 s
    settings.RISK_RETRY_ATTEMPTS = 1
    session.venue(Exchange.BINANCE)
    session.venue(Exchange.BYBIT)
    emulator.inject("bybit", "http_status", status=503, count=None)
    bybit_before = len(emulator.requests_to("/bybit/"))
    time.sleep(3.2)
    binance = len(emulator.requests_to("/api/v3/account"))
    bybit = len(emulator.requests_to("/bybit/")) - bybit_before  # each try stops at its first refused request
    # Binance is re-read as its reading ages (about every 0.3-0.6 s); Bybit, failing, after 0.6, 1.2,
    # 2.4 s... pauses: a handful of tries at most, not one per 0.3 s round (about 10).
    assert binance >= 4, binance
    assert 1 <= bybit <= 4, bybit

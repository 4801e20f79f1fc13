"""Throttling: backoff with jitter, the ccxt failure taxonomy, the request budget, what is retried."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt
import pytest

from arbsite.errors import ExchangeUnavailable
from exchanges import throttle
from tests.risk.test_faults import load_public_markets, place
from tests.venue.server import VenueEmulator


def test_backoff_is_exponential_with_full_jitter() -> None:
    assert throttle.backoff_delay(0, base=0.25, cap=8, rng=lambda: 1.0) == 0.25
    assert throttle.backoff_delay(3, base=0.25, cap=8, rng=lambda: 1.0) == 2.0
    assert throttle.backoff_delay(10, base=0.25, cap=8, rng=lambda: 1.0) == 8.0
    assert throttle.backoff_delay(3, base=0.25, cap=8, rng=lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ccxt.RateLimitExceeded("bybit 429"), "rate_limit"),
        (ccxt.DDoSProtection('binance 429 Too Many Requests {"code":-1003}'), "rate_limit"),
        (ccxt.DDoSProtection('binance 418 I\'m a teapot {"code":-1003,"msg":"IP banned until 1"}'), "ban"),
        (ccxt.ExchangeNotAvailable("binance 503"), "transient"),
        (ccxt.RequestTimeout("timeout"), "transient"),
        (ccxt.InvalidOrder("bad"), "final"),
        (ccxt.InsufficientFunds("poor"), "final"),
    ],
)
def test_it_classifies_ccxt_failures(exc: BaseException, kind: str) -> None:
    assert throttle.classify(exc) == kind


def test_the_budget_holds_the_next_request_for_the_next_second(settings: Any) -> None:
    settings.RISK_REQUEST_BUDGET_PER_SECOND = {"okx": 2}

    async def three() -> list[int]:
        seconds = []
        for _ in range(3):
            await throttle.admit("okx")
            seconds.append(int(time.time()))
        return seconds

    first, _, third = asyncio.run(three())
    assert third > first  # never three in one second


def test_a_ban_refuses_before_spending_the_budget_and_an_operator_can_lift_it() -> None:
    from arbsite.redis_client import get_redis, key

    get_redis().set(key("risk", "ban", "okx"), "okx banned us (test)", ex=60)
    with pytest.raises(ExchangeUnavailable, match="banned us"):
        asyncio.run(throttle.admit("okx"))
    throttle.clear_ban("okx")
    asyncio.run(throttle.admit("okx"))  # admitted again


@pytest.mark.django_db
def test_an_order_is_not_retried_on_a_5xx(venue: VenueEmulator, settings: Any) -> None:
    """Its outcome is unknown: execution reconciles by client id instead of sending twice."""
    settings.RISK_RETRY_BASE_SECONDS = 0.001
    load_public_markets()
    venue.inject("binance", "http_status", status=503, path="/api/v3/order", count=None)
    result = place(7)
    assert isinstance(result, ExchangeUnavailable)
    assert len(venue.requests_to("/api/v3/order")) == 1


@pytest.mark.django_db
def test_a_lookup_is_retried_through_a_5xx(venue: VenueEmulator, settings: Any) -> None:
    from exchanges.venues import LiveVenue

    settings.RISK_RETRY_BASE_SECONDS = 0.001
    load_public_markets()
    venue.inject("binance", "http_status", status=503, path="/api/v3/account", count=2)

    async def balance() -> Any:
        v = LiveVenue("binance", credentials={"apiKey": "MOCK-KEY", "secret": "MOCK-SECRET"})
        try:
            return await v.fetch_balance()
        except Exception as exc:  # the emulator serves no account: the third try says so
            return exc
        finally:
            await v.close()

    asyncio.run(balance())
    assert len(venue.requests_to("/api/v3/account")) == 3  # two 503s retried, then the real answer

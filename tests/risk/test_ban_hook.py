"""A 418 ban: the throttle (exchange layer) halts calls by itself; the risk engine's hook pauses the exchange.

`exchanges.throttle` knows nothing of trading: `trading.risk.install()` registers the handler from
`TradingConfig.ready()`, in every process that sets Django up (web, Celery workers, manage.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import ccxt
import pytest
from django.utils import timezone

from arbsite.errors import ExchangeUnavailable
from exchanges import throttle
from trading.risk import pause_banned_exchange, trading_state

REPO = Path(__file__).resolve().parents[2]


class MockExchangeCall:
    """A ccxt coroutine stand-in: raises the queued exceptions in turn, then answers; counts calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def ban(retry_after: str | None = None) -> ccxt.DDoSProtection:
    """What ccxt raises for a 418 (the status right after the exchange id, as ccxt words it)."""
    exc = ccxt.DDoSProtection('okx 418 I\'m a teapot {"msg":"IP banned"}')
    if retry_after is not None:
        exc.headers = {"Retry-After": retry_after}  # type: ignore[attr-defined]
    return exc


def call(fn: MockExchangeCall) -> Any:
    async def go() -> Any:
        try:
            return await throttle.throttled_call("okx", fn)
        except ExchangeUnavailable as exc:
            return exc

    return asyncio.run(go())


def test_the_risk_engine_registers_its_handler_in_this_process() -> None:
    assert pause_banned_exchange in throttle._ban_handlers


@pytest.mark.parametrize(
    "startup",
    [
        "import django; django.setup()",  # web (asgi) and manage.py commands (marketdata)
        "from arbsite.celery import app; app.loader.import_default_modules()",  # a Celery worker's start
    ],
)
def test_every_kind_of_process_registers_the_handler(startup: str) -> None:
    check = ("from exchanges import throttle; from trading.risk import pause_banned_exchange; "
             "assert throttle._ban_handlers == [pause_banned_exchange], throttle._ban_handlers")
    before = ("from exchanges import throttle; assert throttle._ban_handlers == []; ")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tests.settings")}
    done = subprocess.run([sys.executable, "-c", f"{before}{startup}; {check}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
def test_a_ban_with_the_hook_halts_the_exchange_scope(settings: Any) -> None:
    from trading.risk_models import Alert, TradingState

    settings.RISK_BAN_SECONDS = 600
    fn = MockExchangeCall(ban(retry_after="900"))
    first = call(fn)
    assert isinstance(first, ExchangeUnavailable) and "halted for 900s" in str(first.detail)
    second = call(fn)
    assert isinstance(second, ExchangeUnavailable) and "418" in str(second.detail)
    assert fn.calls == 1  # never retried, then refused before calling
    state = trading_state(exchange="okx")
    assert state.state == "halted" and "418" in state.reason
    row = TradingState.objects.get(scope="exchange:okx")
    assert row.until is not None
    assert timedelta(seconds=890) < row.until - timezone.now() <= timedelta(seconds=900)  # the Retry-After
    assert Alert.objects.filter(exchange="okx", severity="critical", risk_check="throttle").count() == 1
    assert trading_state(exchange="binance").state == "active"


@pytest.mark.django_db
def test_without_a_handler_the_ban_still_refuses_calls_and_says_so_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(throttle, "_ban_handlers", [])
    fn = MockExchangeCall(ban())
    with caplog.at_level(logging.CRITICAL, logger="exchanges.throttle"):
        first = call(fn)
    second = call(fn)
    assert isinstance(first, ExchangeUnavailable) and isinstance(second, ExchangeUnavailable)
    assert fn.calls == 1
    unhandled = [r for r in caplog.records if getattr(r, "event", None) == "exchange_ban_unhandled"]
    assert len(unhandled) == 1 and unhandled[0].levelno == logging.CRITICAL
    assert trading_state(exchange="okx").state == "active"  # nobody told the risk engine


def test_a_failing_handler_does_not_lift_the_ban(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str, float]] = []

    def mock_failing_handler(exchange: str, reason: str, seconds: float) -> None:
        seen.append((exchange, reason, seconds))
        raise RuntimeError("database unavailable (mock)")

    monkeypatch.setattr(throttle, "_ban_handlers", [])
    throttle.on_ban(mock_failing_handler)
    throttle.on_ban(mock_failing_handler)  # registering twice runs it once
    fn = MockExchangeCall(ban())
    with caplog.at_level(logging.ERROR, logger="exchanges.throttle"):
        assert isinstance(call(fn), ExchangeUnavailable)
    assert isinstance(call(fn), ExchangeUnavailable)
    assert fn.calls == 1 and len(seen) == 1 and seen[0][0] == "okx"
    assert any(getattr(r, "event", None) == "risk_ban_store_failed" for r in caplog.records)
    throttle.remove_ban_handler(mock_failing_handler)
    assert throttle._ban_handlers == []


class MockBrokenRedis:
    """Redis that is down: every command raises, as redis-py does when it cannot connect."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("redis down (mock)")

        return fail


def test_without_redis_this_process_keeps_the_ban(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    settings.RISK_BAN_SECONDS = 600
    monkeypatch.setattr(throttle, "_ban_handlers", [])
    monkeypatch.setattr(throttle, "_local_bans", {})
    monkeypatch.setattr(throttle, "_redis", MockBrokenRedis)
    fn = MockExchangeCall(ban())
    assert isinstance(call(fn), ExchangeUnavailable)
    refused = call(fn)
    assert isinstance(refused, ExchangeUnavailable) and "418" in str(refused.detail)
    assert fn.calls == 1
    deadline, reason = throttle._local_bans["okx"]
    assert 590 < deadline - time.monotonic() <= 600
    throttle._local_bans["okx"] = (time.monotonic() - 1, reason)  # as if the ban's time had run out
    later = MockExchangeCall()
    assert call(later) == "ok" and later.calls == 1
    assert "okx" not in throttle._local_bans

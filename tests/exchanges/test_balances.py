"""Balance readings: used only while young and of the account's current generation."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from arbsite.redis_client import get_async_redis
from exchanges import balances
from exchanges.balances import Reading, usable

FREE = {"USDT": Decimal("1000.5"), "BTC": Decimal("0.25")}


def test_a_reading_round_trips_exactly() -> None:
    reading = Reading(FREE, 1_700_000_000_000, 7)
    assert Reading.from_json(reading.to_json()) == reading


def test_a_corrupt_reading_is_no_reading() -> None:
    for raw in ("", "{", '{"free": {"USDT": "x"}, "ts": 1, "gen": 0}', '{"free": {}, "ts": "soon", "gen": 0}', "[]"):
        assert Reading.from_json(raw) is None


@given(gen=st.integers(0, 5), current=st.integers(0, 5), age=st.integers(-5_000, 20_000),
       max_age=st.integers(0, 15_000))
def test_usable_only_when_current_and_young(gen: int, current: int, age: int, max_age: int) -> None:
    now = 1_700_000_000_000
    reading = Reading(FREE, now - age, gen)
    assert usable(reading, current, now, max_age) is (gen == current and 0 <= age <= max_age)
    assert usable(None, current, now, max_age) is False


def _run(coro):  # type: ignore[no-untyped-def]
    async def with_client():  # type: ignore[no-untyped-def]
        redis = get_async_redis()
        try:
            return await coro(redis)
        finally:
            await redis.aclose()

    return asyncio.run(with_client())


def test_an_order_voids_every_earlier_reading() -> None:
    async def scenario(redis):  # type: ignore[no-untyped-def]
        now = 1_700_000_000_000
        gen = await balances.generation(redis, "binance", "acct")
        await balances.store(redis, "binance", "acct", Reading(FREE, now, gen))
        fresh = await balances.recent(redis, "binance", "acct", now + 100, 10_000)
        await balances.invalidate(redis, "binance", "acct")  # an order went out
        after_order = await balances.recent(redis, "binance", "acct", now + 200, 10_000)
        too_old = await balances.recent(redis, "binance", "acct", now + 20_000, 10_000)
        other_account = await balances.recent(redis, "binance", "other", now + 100, 10_000)
        return fresh, after_order, too_old, other_account

    fresh, after_order, too_old, other_account = _run(scenario)
    assert fresh == FREE
    assert after_order is None and too_old is None and other_account is None


def test_a_read_that_overlapped_an_order_is_not_kept_as_current() -> None:
    async def scenario(redis):  # type: ignore[no-untyped-def]
        now = 1_700_000_000_000
        gen = await balances.generation(redis, "bybit", "acct")  # taken before the REST read...
        await balances.invalidate(redis, "bybit", "acct")  # ...an order goes out while it is in flight
        await balances.store(redis, "bybit", "acct", Reading(FREE, now, gen))
        return await balances.recent(redis, "bybit", "acct", now + 10, 10_000)

    assert _run(scenario) is None


def test_accounts_differ_by_key_and_endpoint_and_never_show_the_key() -> None:
    a = balances.account_id("binance", "key-1", "")
    assert a != balances.account_id("binance", "key-2", "")
    assert a != balances.account_id("binance", "key-1", "http://127.0.0.1:8765")
    assert a != balances.account_id("bybit", "key-1", "")
    assert "key-1" not in a and len(a) == 16

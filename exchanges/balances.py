"""Recent free balances per exchange account, shared by every process through Redis.

An order on its way out should not wait for a signed REST balance read (20 ms or more at a
real venue). Each account's last reading is kept with the account's *generation*: every order
sent on the account bumps the generation, so a reading taken before an order can no longer
pass for the balance after it — in this process or any other (the TWAP worker and the
execution worker trade the same accounts). A reading is used only while it is younger than
`RISK_BALANCE_MAX_AGE_SECONDS` and of the current generation; anything else is read again.

The pure part (`Reading`, `usable`) decides; the Redis calls are thin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from arbsite.redis_client import key


def max_age_seconds() -> float:
    """How old a balance reading may be for the risk gate (a venue's answer, not ours, stays final)."""
    return float(getattr(settings, "RISK_BALANCE_MAX_AGE_SECONDS", 10.0))


def account_id(exchange: str, api_key: str, endpoint: str = "") -> str:
    """A short, non-reversible name for an account at an endpoint (keys never appear in Redis)."""
    return hashlib.sha256(f"{exchange}|{endpoint}|{api_key}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Reading:
    """Free balances as one REST read saw them, at `ts_ms`, for account generation `generation`."""

    free: Mapping[str, Decimal]
    ts_ms: int
    generation: int

    def to_json(self) -> str:
        return json.dumps({"free": {a: str(v) for a, v in self.free.items()}, "ts": self.ts_ms,
                           "gen": self.generation})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Reading | None:
        try:
            data = json.loads(raw)
            return cls({str(a): Decimal(str(v)) for a, v in dict(data["free"]).items()}, int(data["ts"]),
                       int(data["gen"]))
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return None


def usable(reading: Reading | None, generation: int, now_ms: int, max_age_ms: float) -> bool:
    """A reading stands for the balance now only if no order went out since and it is young enough."""
    if reading is None or reading.generation != generation:
        return False
    age = now_ms - reading.ts_ms
    return 0 <= age <= max_age_ms


def _keys(exchange: str, account: str) -> tuple[str, str]:
    return key("balance", exchange, account), key("balance", exchange, account, "gen")


def _int(raw: Any) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


async def recent(redis: Any, exchange: str, account: str, now_ms: int,
                 max_age_ms: float) -> Mapping[str, Decimal] | None:
    """The account's last reading when it still stands for its balance now; None otherwise."""
    value_key, gen_key = _keys(exchange, account)
    raw, gen = await redis.mget([value_key, gen_key])
    reading = Reading.from_json(raw) if raw else None
    if not usable(reading, _int(gen), now_ms, max_age_ms):
        return None
    assert reading is not None
    return reading.free


async def generation(redis: Any, exchange: str, account: str) -> int:
    """Take this before a REST read: `store` keeps the reading only if it is still current."""
    return _int(await redis.get(_keys(exchange, account)[1]))


async def store(redis: Any, exchange: str, account: str, reading: Reading) -> None:
    """Keep a reading (stale generations are kept too: `usable` refuses them, which is the point)."""
    ttl = max(1, int(max_age_seconds() * 6))
    await redis.set(_keys(exchange, account)[0], reading.to_json(), ex=ttl)


GENERATION_TTL_SECONDS = 7 * 24 * 3600  # far beyond any reading's life; renewed by every order


async def invalidate(redis: Any, exchange: str, account: str) -> None:
    """An order went out on the account: every reading taken before it is void."""
    gen_key = _keys(exchange, account)[1]
    pipe = redis.pipeline(transaction=True)
    pipe.incr(gen_key)
    pipe.expire(gen_key, GENERATION_TTL_SECONDS)
    await pipe.execute()

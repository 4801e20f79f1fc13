"""One Redis connection pool per process for the keys we manage ourselves (books, metrics)."""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def get_async_redis() -> aioredis.Redis:
    """A fresh asyncio client: event loops must not share connections."""
    return aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


_LOOP_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def loop_redis() -> aioredis.Redis:
    """The running loop's own pooled asyncio client (the web server's hot paths reuse connections)."""
    loop = asyncio.get_running_loop()
    client = _LOOP_CLIENTS.get(loop)
    if client is None:
        client = _LOOP_CLIENTS[loop] = get_async_redis()
    return client


def key(*parts: str) -> str:
    """Namespaced key, so tests and a running desk never share keys."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "arbsite")
    return ":".join((prefix, *parts))

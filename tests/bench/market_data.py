"""Prices API latency from cache vs a bare ASGI endpoint, and tick -> `/ws` client latency."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.bench.harness import Desk
from tests.bench.stats import pct, summary


async def _open_loop(url: str, headers: dict[str, str], rate: float, seconds: float) -> tuple[list[float], dict[str, int]]:
    """Fire requests on a fixed schedule (open loop), so slow responses cannot hide queueing."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.get(url) as resp:
                body = await resp.read()
            latencies.append((time.perf_counter() - started) * 1000)
            label = str(resp.status)
            if resp.status == 200 and b'"source"' in body:
                label = "200 " + json.loads(body)["data"].get("source", "?")
            outcomes[label] = outcomes.get(label, 0) + 1

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, outcomes


async def _warm(desk: Desk, path: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.monotonic() < deadline:
            async with session.get(desk.web_url + path) as resp:
                if resp.status == 200 and (await resp.json())["data"].get("source") == "stream":
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{path} never served a streamed book")


async def prices_vs_bare(desk: Desk, rate: float, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Token {desk.token}"}
    path = "/api/prices/binance/BTCUSDT?type=spot"
    await _warm(desk, path, headers)
    bare, _ = await _open_loop(desk.web_url + "/_bench/bare", {}, rate, seconds)
    prices, outcomes = await _open_loop(desk.web_url + path, headers, rate, seconds)
    print(f"  bare ASGI endpoint      {summary(bare)}")
    print(f"  GET {path}  {summary(prices)}  outcomes={outcomes}")
    ratio = pct(prices, 95) / pct(bare, 95)
    print(f"  p95 ratio prices/bare = {ratio:.2f}x")
    return {"prices_p95": pct(prices, 95), "bare_p95": pct(bare, 95), "ratio": ratio}


async def tick_to_client(desk: Desk, seconds: float) -> dict[str, float]:
    """Latency from the market-data process receiving a book update to a `/ws` client receiving it."""
    ws_url = desk.web_url.replace("http", "ws") + f"/ws?token={desk.token}"
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, origin=desk.web_url) as ws:
        await ws.send_json({"action": "subscribe", "symbols": ["binance:spot:BTCUSDT", "bybit:linear:BTCUSDT"]})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now_ms = time.time() * 1000
            payload = json.loads(msg.data)
            if payload.get("event") == "price_update" and "recvTs" in payload["data"]:
                latencies.append(now_ms - float(payload["data"]["recvTs"]))
    print(f"  tick -> /ws client      {summary(latencies)}")
    return {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "n": float(len(latencies))}

"""Execution latency on the live path: detection -> both legs received by the venue emulator.

Real processes, as in production: the venue emulator (`python -m tests.venue`, its own process
and event loop) and a Celery execution worker (`-Q execution -c 1 --prefetch-multiplier 1`, as in
the Procfile) with trading keys for the emulator's test accounts, so every order goes through
`LiveVenue` -> ccxt -> signed HTTP. This process plays the detector: it writes both books to
Redis (the emulator's own recorded books, kept to `ORDER_BOOK_DEPTH` levels as the market-data
process stores them, with a fresh receive time), takes the detection moment (`time.time_ns()`)
and calls what the detector calls, `trading.execution.request_auto_execution` (execution row, then the Celery message on commit).
The emulator stamps each order-create request with `time.time_ns()` when its handler receives it
(before auth or matching); both clocks are the same machine's wall clock.

Executions run one at a time, each detection IDLE_GAP_S after the previous execution ended (its
worker is idle again). The database is a private SQLite file unless BENCH_EXECUTION_DATABASE_URL
names another (an empty Postgres database, say); Redis is the first database (12 down to 1) that no
client uses and holds no keys, unless BENCH_EXECUTION_REDIS_URL says otherwise: the worker consumes
the "execution" queue, which any other desk on the same database would share.

Figures, per execution (Bybit linear BTCUSDT sell vs Binance spot BTCUSDT buy):
- detection -> both legs received: the later leg's arrival minus the detection moment
  (queue hop, claim, re-validation on the cached books and balance reading, the risk gate, both sends);
- skew: the gap between the two legs' arrivals.

Run: `python -m tests.bench.execution [--executions 200]` (targets: p99 <= 30 ms and <= 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.bench.harness import PY, ROOT, free_port, port_open, wait_for
from tests.bench.stats import pct
from tests.venue.trading import TEST_ACCOUNTS

TARGET_LATENCY_MS = 30.0
TARGET_SKEW_MS = 5.0
WARMUP = 5
# After an execution ends, its worker still closes two ccxt clients (ccxt sleeps 250 ms in close):
# the next detection comes after that, so each one meets an idle worker, as a detection normally does.
IDLE_GAP_S = 0.4
PAIR_ID = "bench_exec_bybit_binance_btc"


def _unused_redis_db(base: str = "redis://127.0.0.1:6379") -> str:
    """A Redis database nobody is connected to and that holds no keys (tests use 15, benches 14, e2e 13)."""
    import redis

    client = redis.Redis.from_url(f"{base}/0")
    try:
        busy = {int(c.get("db", -1)) for c in client.client_list()}
        for db in range(12, 0, -1):
            if db not in busy and not redis.Redis.from_url(f"{base}/{db}").dbsize():
                return f"{base}/{db}"
    finally:
        client.close()
    raise RuntimeError("no unused Redis database for the execution bench; set BENCH_EXECUTION_REDIS_URL")


@contextlib.contextmanager
def execution_desk(tmp: Path) -> Iterator[dict[str, str]]:
    """Emulator + execution worker on a private SQLite file and Redis database; yields the env."""
    venue_port = free_port()
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "arbsite.settings",
        "SECRET_KEY": "bench-only-secret",
        "DATABASE_URL": os.environ.get("BENCH_EXECUTION_DATABASE_URL", f"sqlite:///{tmp / 'bench-exec.sqlite3'}"),
        # Its own Redis database: another desk's worker on the same "execution" queue would take its tasks.
        "REDIS_URL": os.environ.get("BENCH_EXECUTION_REDIS_URL") or _unused_redis_db(),
        "CACHE_KEY_PREFIX": "arbsite-bench-exec",
        "CHANNELS_PREFIX": "arbsite-bench-exec:ws",
        "EXCHANGE_VENUE_URL": f"http://127.0.0.1:{venue_port}",
        "LOG_LEVEL": "WARNING",
    })
    env.pop("CELERY_BROKER_URL", None)
    picked_redis = not os.environ.get("BENCH_EXECUTION_REDIS_URL")
    for exchange, accounts in TEST_ACCOUNTS.items():
        api_key, secret = next(iter(accounts.items()))
        env[f"{exchange.upper()}_API_KEY"], env[f"{exchange.upper()}_API_SECRET"] = api_key, secret
    for name in ("OKX", "BITGET"):
        env.pop(f"{name}_API_KEY", None)
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp / "processes.log", "wb")

    def spawn(*args: str) -> None:
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    try:
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        spawn(PY, "-m", "tests.venue", "--port", str(venue_port))
        wait_for(lambda: port_open(venue_port), 20, "emulator")
        spawn(PY, "-m", "celery", "-A", "arbsite", "worker", "-l", os.environ.get("BENCH_WORKER_LOG", "warning"), "-Q", "execution", "-c", "1",
              "--prefetch-multiplier", "1", "-P", os.environ.get("BENCH_WORKER_POOL", "prefork"), "-n", f"bench-exec-{os.getpid()}@%h", "--without-gossip",
              "--without-mingle", "--without-heartbeat")
        yield env
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if picked_redis:  # it was empty and unused when picked: leave it so for the next run
            import redis

            redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        print(f"    (process logs: {tmp / 'processes.log'})")


def _control(venue_url: str, what: str, since: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{venue_url}/_control/{what}?since={since}", timeout=5) as resp:
        return list(json.loads(resp.read()))


async def _emulator_books() -> list[Any]:
    """Both legs' books as the emulator serves them, at the depth market data keeps (`ORDER_BOOK_DEPTH`)."""
    from exchanges.connectivity import async_client
    from exchanges.order_books import OrderBook
    from exchanges.symbols import Exchange, MarketType

    books = []
    for exchange, kind, unified, limit in ((Exchange.BYBIT, MarketType.LINEAR, "BTC/USDT:USDT", 200),
                                           (Exchange.BINANCE, MarketType.SPOT, "BTC/USDT", 1000)):
        client = async_client(exchange)
        try:
            raw = await client.fetch_order_book(unified, limit)
        finally:
            await client.close()
        books.append(OrderBook(
            exchange, "BTCUSDT", kind,
            [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in raw["bids"]],
            [(Decimal(repr(p)), Decimal(repr(q))) for p, q, *_ in raw["asks"]],
            ts=int(time.time() * 1000), source="emulator",
        ).trimmed())
    return books


def _prepare_desk(qty: Decimal) -> Any:
    """The auto-executing pair, and limits wide enough for a few hundred executions in a row."""
    from trading.models import Pair
    from trading.risk.gate import global_limits_row

    limits = global_limits_row()
    for name in ("max_position_notional_per_venue", "max_net_position_notional", "max_daily_notional"):
        setattr(limits, name, Decimal("1000000000"))
    limits.max_daily_loss = Decimal("1000000")
    limits.save()
    pair, _ = Pair.objects.update_or_create(id=PAIR_ID, defaults={
        "leg1_exchange": "bybit", "leg1_symbol": "BTCUSDT", "leg1_type": "linear",
        "leg2_exchange": "binance", "leg2_symbol": "BTCUSDT", "leg2_type": "spot", "threshold": Decimal("0.1"),
        "qty": qty, "total_amount": Decimal("100000000"), "direction": "auto", "enabled": True,
        "auto_execute": True,
    })
    return pair


def _one(books: list[Any], venue_url: str, seen: tuple[int, int],
         timeout: float = 15.0) -> tuple[float, float, float, str, tuple[int, int]]:
    """One detection -> execution: (latency ms, skew ms, detection -> the worker's first request ms,
    final state, (arrivals, requests) seen so far)."""
    from exchanges.order_books import OrderBook, write_book
    from trading.execution import client_order_id, request_auto_execution
    from trading.execution_models import ACTIVE_STATES, Execution, OrderPurpose

    now = int(time.time() * 1000)
    for book in books:
        write_book(OrderBook(book.exchange, book.symbol, book.type, book.bids, book.asks, ts=now, source=book.source))
    detected_ns = time.time_ns()
    execution = request_auto_execution(PAIR_ID)
    open("/tmp/trace.txt","a").write(f"{execution.id} detected {detected_ns}\n")
    if execution is None:
        raise RuntimeError("the pair did not auto-execute (one still in flight?)")
    deadline = time.monotonic() + timeout
    while Execution.objects.filter(pk=execution.pk, state__in=ACTIVE_STATES).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {execution.pk} did not finish within {timeout}s")
        time.sleep(0.02)  # not timed: only says when the worker is idle again (light on SQLite's lock)
    execution.refresh_from_db()
    wanted = {client_order_id(execution, leg, OrderPurpose.ENTRY, 0) for leg in (1, 2)}
    arrivals = _control(venue_url, "arrivals", seen[0])
    requests = _control(venue_url, "requests", seen[1])
    stamps = [a["wallNs"] for a in arrivals if a["clientOrderId"] in wanted]
    if len(stamps) != 2:
        raise RuntimeError(f"execution {execution.pk} ({execution.state}: {execution.error_message}): "
                           f"{len(stamps)} entry orders reached the emulator")
    latency = (max(stamps) - detected_ns) / 1e6
    open("/tmp/trace.txt","a").write(f"{execution.id} arrived {max(stamps)}\n")
    skew = abs(stamps[0] - stamps[1]) / 1e6
    first = min((r["wallNs"] for r in requests if r["wallNs"] >= detected_ns), default=max(stamps))
    return (latency, skew, (first - detected_ns) / 1e6, str(execution.state),
            (seen[0] + len(arrivals), seen[1] + len(requests)))


def detection_to_orders(executions: int = 200, qty: str = "0.001", quiet: bool = False) -> dict[str, float]:
    """Run the benchmark; prints and returns p50/p99 of latency and skew (ms)."""
    tmp = Path(tempfile.mkdtemp(prefix="arbsite-bench-exec-"))
    with execution_desk(tmp) as env:
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings

        venue_url = str(settings.EXCHANGE_VENUE_URL)
        _prepare_desk(Decimal(qty))
        books = asyncio.run(_emulator_books())
        latencies: list[float] = []
        skews: list[float] = []
        pickups: list[float] = []
        states: dict[str, int] = {}
        seen = (0, 0)
        # The first executions pay for the worker's imports and market loads: not counted.
        for n in range(WARMUP + executions):
            latency, skew, pickup, state, seen = _one(books, venue_url, seen, timeout=60.0 if n == 0 else 15.0)
            states[state] = states.get(state, 0) + 1
            if n >= WARMUP:
                latencies.append(latency)
                skews.append(skew)
                pickups.append(pickup)
            time.sleep(IDLE_GAP_S)
    result = {"executions": len(latencies), "latency_p50_ms": pct(latencies, 50), "latency_p99_ms": pct(latencies, 99),
              "latency_max_ms": max(latencies), "skew_p50_ms": pct(skews, 50), "skew_p99_ms": pct(skews, 99),
              "skew_max_ms": max(skews), "pickup_p50_ms": pct(pickups, 50), "pickup_p99_ms": pct(pickups, 99)}
    if not quiet:
        ok = "ok" if result["latency_p99_ms"] <= TARGET_LATENCY_MS else "OVER TARGET"
        print(f"    detection -> both legs received by the emulator: n={len(latencies)} "
              f"p50={result['latency_p50_ms']:.2f} ms p99={result['latency_p99_ms']:.2f} ms "
              f"max={result['latency_max_ms']:.2f} ms  [target p99 <= {TARGET_LATENCY_MS:.0f} ms: {ok}]")
        ok = "ok" if result["skew_p99_ms"] <= TARGET_SKEW_MS else "OVER TARGET"
        print(f"    skew between the two legs' arrival: p50={result['skew_p50_ms']:.2f} ms "
              f"p99={result['skew_p99_ms']:.2f} ms max={result['skew_max_ms']:.2f} ms  "
              f"[target p99 <= {TARGET_SKEW_MS:.0f} ms: {ok}]")
        print(f"    of which detection -> the worker's first request at the emulator (queue hop, claim, "
              f"re-validation, risk gate): p50={result['pickup_p50_ms']:.2f} ms p99={result['pickup_p99_ms']:.2f} ms; "
              "the rest is the second leg's send")
        print(f"    execution outcomes (warm-up included): {states}")
    return result


def main(executions: int = 200) -> None:
    from django.conf import settings

    if settings.configured:
        # Django is already set up in this process (another bench ran first) with other settings:
        # this one needs its own database and Redis, so it runs in a fresh interpreter.
        done = subprocess.run([PY, "-m", "tests.bench.execution", "--executions", str(executions)], cwd=ROOT)
        if done.returncode:
            print(f"    [execution] benchmark FAILED (exit {done.returncode}); see the output above")
        return
    print("[execution] detection -> both legs at the venue emulator (live path: Celery worker, LiveVenue, ccxt)")
    detection_to_orders(executions)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.execution")
    parser.add_argument("--executions", type=int, default=200)
    main(parser.parse_args().executions)
